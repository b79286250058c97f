from django.urls import path

from mailboxes.views.emails import EmailDetailView, EmailListView, EmailRawView

app_name = "emails"
urlpatterns = [
    path("", EmailListView.as_view(), name="list"),
    path("<int:pk>/", EmailDetailView.as_view(), name="detail"),
    path("<int:pk>/raw/", EmailRawView.as_view(), name="raw"),
]

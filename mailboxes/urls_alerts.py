from django.urls import path

from mailboxes.views.alerts import AlertListView

app_name = "alerts"
urlpatterns = [
    path("", AlertListView.as_view(), name="list"),
]

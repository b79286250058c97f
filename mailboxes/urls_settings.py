from django.urls import path

from mailboxes.views.settings import EmailSettingsView

app_name = "settings"
urlpatterns = [
    path("email/", EmailSettingsView.as_view(), name="email"),
]

from django.urls import path

from mailboxes.views.commands import MailboxCommandView
from mailboxes.views.mailboxes import (
    MailboxEditView,
    MailboxListView,
    MailboxStatusView,
    NewForwardMailboxView,
)

app_name = "mailboxes"
urlpatterns = [
    path("", MailboxListView.as_view(), name="list"),
    path("new-forward/", NewForwardMailboxView.as_view(), name="new_forward"),
    path("commands/", MailboxCommandView.as_view(), name="commands"),
    path("<int:pk>/", MailboxEditView.as_view(), name="edit"),
    path("<int:pk>/status/", MailboxStatusView.as_view(), name="status"),
]

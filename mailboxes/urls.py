from django.urls import path

from mailboxes.views.bulk_edits import SetDeliveryMethodsView, SetServerProfileView
from mailboxes.views.bulk_jobs import BulkJobStatusView, BulkJobView
from mailboxes.views.commands import MailboxCommandView
from mailboxes.views.mailboxes import (
    MailboxEditView,
    MailboxListView,
    MailboxMatchingCountView,
    MailboxStatusView,
    NewForwardMailboxView,
)
from mailboxes.views.processing import ProcessNowView

app_name = "mailboxes"
urlpatterns = [
    path("", MailboxListView.as_view(), name="list"),
    path("new-forward/", NewForwardMailboxView.as_view(), name="new_forward"),
    path("matching/", MailboxMatchingCountView.as_view(), name="matching"),
    path("commands/", MailboxCommandView.as_view(), name="commands"),
    path("set-server-profile/", SetServerProfileView.as_view(), name="set_server_profile"),
    path("set-delivery-methods/", SetDeliveryMethodsView.as_view(), name="set_delivery_methods"),
    path("<int:pk>/", MailboxEditView.as_view(), name="edit"),
    path("<int:pk>/status/", MailboxStatusView.as_view(), name="status"),
    path("<int:pk>/process-now/", ProcessNowView.as_view(), name="process_now"),
    path("bulk-actions/<int:pk>/", BulkJobView.as_view(), name="bulk_job"),
    path("bulk-actions/<int:pk>/status/", BulkJobStatusView.as_view(), name="bulk_job_status"),
]

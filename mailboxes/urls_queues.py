from django.urls import path

from mailboxes.views.queues import NewQueueView, QueueEditView, QueueListView

app_name = "queues"
urlpatterns = [
    path("", QueueListView.as_view(), name="list"),
    path("new/", NewQueueView.as_view(), name="new"),
    path("<int:pk>/", QueueEditView.as_view(), name="edit"),
]

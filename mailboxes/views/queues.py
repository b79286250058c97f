"""Queue pages: list, new queue (which creates its mailbox), and the queue form."""

from mailboxadmin.paginator import SortKey
from mailboxadmin.views import KeysetListView, ServiceCreateView, ServiceUpdateView, search_filter
from mailboxes.forms import NewQueueForm, QueueForm
from mailboxes.models import Queue
from mailboxes.services.queues import queue_insert, queue_save
from mailboxes.views.commands import REGARDING_COMMANDS, commands_for
from mailboxes.views.conflicts import EmailConflictMixin
from mailboxes.views.users import RegardingFormMixin


class QueueListView(KeysetListView):
    template_name = "mailboxes/queue_list.html"
    view_permission = "mailboxes.view_queue"
    change_permission = "mailboxes.change_queue"
    sorts = {"name": [SortKey("name"), SortKey("id")]}

    def get_queryset(self):
        queues = Queue.objects.select_related("owner", "mailbox")
        q = self.request.GET.get("q", "").strip()
        if q:
            queues = queues.filter(search_filter(q, ["name", "email"]))
        return queues

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["commands"] = commands_for(self.request.user, names=REGARDING_COMMANDS)
        context["can_add"] = self.request.user.has_perm("mailboxes.add_queue")
        return context


class NewQueueView(EmailConflictMixin, ServiceCreateView):
    form_class = NewQueueForm
    template_name = "mailboxes/queue_form.html"
    add_permission = "mailboxes.add_queue"
    list_url_name = "queues:list"
    saved_message = "The queue “{object.name}” and its mailbox were created."

    def get_initial(self):
        return {**super().get_initial(), "owner": self.request.user.username}

    def save(self, form):
        return queue_insert(form.instance, actor=self.request.user)


class QueueEditView(RegardingFormMixin, ServiceUpdateView):
    form_class = QueueForm
    template_name = "mailboxes/queue_form.html"
    view_permission = "mailboxes.view_queue"
    change_permission = "mailboxes.change_queue"
    list_url_name = "queues:list"
    saved_message = "The queue “{object.name}” was saved."

    def get_queryset(self):
        return Queue.objects.select_related("owner", "mailbox")

    def save(self, form):
        version = form.cleaned_data["version"]
        return queue_save(form.instance, expected_version=version, actor=self.request.user)

"""M11 said with a way out: the form names the mailbox that already uses the address."""

from mailboxes.models import Mailbox
from mailboxes.models.mailboxes import M11_MESSAGE


class EmailConflictMixin:
    """For a form refused with M11 on its `email` field: `email_conflict`, the mailbox
    that uses the address (includes/field.html links it next to the error)."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context["form"]
        if form.is_bound and M11_MESSAGE in form.errors.get("email", []):
            instance = form.instance
            own = instance if isinstance(instance, Mailbox) else getattr(instance, "mailbox", None)
            others = Mailbox.objects.with_email(form.data.get(form.add_prefix("email"), "").strip())
            if own is not None and own.pk is not None:
                others = others.exclude(pk=own.pk)
            context["email_conflict"] = others.only("pk", "name", "email").first()
        return context

"""Forms of the mailbox admin: the change forms (its bulk actions' forms are in mailboxes.forms)."""

from mailboxadmin.admin_tools import (
    ServiceModelForm,
    VersionedFormMixin,
    WriteOnlyPasswordsMixin,
    clear_password_field,
    password_field,
)
from mailboxes.models import Mailbox


class MailboxForm(WriteOnlyPasswordsMixin, ServiceModelForm):
    password = password_field()
    write_only_passwords = {"password": ("set_password", "password_ciphertext", "has_password")}

    class Meta:
        model = Mailbox
        fields = "__all__"


class ForwardMailboxAddForm(MailboxForm):
    """New forward mailbox: the only kind created on its own (M1)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.kind = Mailbox.Kind.FORWARD


class MailboxChangeForm(VersionedFormMixin, MailboxForm):
    clear_password = clear_password_field()

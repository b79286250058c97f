from django.apps import AppConfig


class MailboxAdminConfig(AppConfig):
    name = "mailboxadmin"
    verbose_name = "Mailbox Admin"

    def ready(self):
        from mailboxadmin import checks  # noqa: F401  (registers the system checks)

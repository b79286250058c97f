from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from mailboxadmin.commands import (
    ScriptCommand,
    add_actor_argument,
    add_password_arguments,
    command_actor,
    one_line,
    read_password,
)
from mailboxes.config.document import renamed
from mailboxes.models import Mailbox
from mailboxes.services.mailboxes import mailbox_save

FLAGS = {
    "username": "--username",
    "password": "--password-stdin/--password-env",
    "password_ciphertext": "--password-stdin/--password-env",
}


class Command(ScriptCommand):
    help = (
        "Give a mailbox (user, queue or forward) its own credentials: sets Allow to Use "
        "Credentials for Email Processing to Yes, the user name and the password. The mailbox's "
        'server profile must authenticate with "Credentials Specified by a User or Queue". '
        "The password is read from standard input or an environment variable, never from the "
        "command line. Changed credentials reset the mailbox's test results to Not Run."
    )
    example = """
        printf '%s\\n' "$ALICE_PASSWORD" | manage.py set_mailbox_credentials alice@contoso.test \\
            --username alice@contoso.test --password-stdin

        manage.py set_mailbox_credentials support@contoso.test --username support \\
            --password-env SUPPORT_PASSWORD
    """

    def add_arguments(self, parser):
        parser.add_argument("address", metavar="ADDRESS", help="The mailbox's email address.")
        parser.add_argument(
            "--username", metavar="U", required=True, help="The user name the mail server knows."
        )
        add_password_arguments(parser, what="the mailbox's password")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        address = options["address"]
        record = f"mailbox {address}"
        actor = command_actor(options, "mailboxes.change_mailbox")
        try:
            password = read_password(options, required=True)
        except CommandError as error:
            raise CommandError(f"{record}: {error}") from None
        try:
            with transaction.atomic():
                mailbox = (
                    Mailbox.objects.select_related("server_profile", "user", "queue")
                    .with_email(address)
                    .first()
                )
                if mailbox is None:
                    raise CommandError(f"{record}: there is no mailbox with this address.")
                stored = mailbox.password_ciphertext
                # Keeps the stored token when it holds this password bound to the servers
                # of the mailbox's profile now; otherwise binds it to them (SPEC 9).
                mailbox.set_password(password)
                unchanged = (
                    mailbox.allow_credentials
                    and mailbox.username == options["username"]
                    and mailbox.password_ciphertext == stored
                )
                if not unchanged:
                    mailbox.allow_credentials = True
                    mailbox.username = options["username"]
                    mailbox_save(mailbox, actor=actor, via="set_mailbox_credentials")
        except ValidationError as error:
            raise CommandError(one_line(renamed(error, FLAGS), record=record)) from None
        if unchanged:
            self.stdout.write(f"Mailbox {mailbox.email} already has these credentials; nothing changed.")
        else:
            self.stdout.write(
                f"Set the credentials of mailbox {mailbox.email} (user name {mailbox.username})."
            )

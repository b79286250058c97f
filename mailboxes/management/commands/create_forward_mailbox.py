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
from mailboxes.services.mailboxes import forward_mailbox_create
from serverprofiles.models import EmailServerProfile

FLAGS = {
    "name": "--name",
    "email": "--email",
    "server_profile": "--profile",
    "delete_after_processing": "--delete-after-processing",
    "allow_credentials": "--username",
    "username": "--username",
    "password": "--password-stdin/--password-env",
    "password_ciphertext": "--password-stdin/--password-env",
}


class Command(ScriptCommand):
    help = (
        "Create a forward mailbox: a dedicated collection box that receives copies of other "
        "mailboxes' mail through server-side forwarding rules. Its Incoming Email is "
        "Server-Side Synchronization, its Outgoing Email and Appointments, Contacts, and "
        "Tasks are None. Give --username and a password for its own credentials (the profile "
        'must authenticate with "Credentials Specified by a User or Queue").'
    )
    example = """
        printf '%s\\n' "$FWD_PASSWORD" | manage.py create_forward_mailbox --name "Forward box" \\
            --email fwd@contoso.test --profile "Contoso IMAP" --delete-after-processing \\
            --username fwd@contoso.test --password-stdin
    """

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The mailbox's name.")
        parser.add_argument("--email", metavar="ADDRESS", required=True, help="Its email address (unique).")
        parser.add_argument(
            "--profile", metavar="PROFILE_NAME", required=True, help="The email server profile it uses."
        )
        parser.add_argument(
            "--delete-after-processing",
            action="store_true",
            help="Delete each message from the server once it has been processed.",
        )
        parser.add_argument("--username", metavar="U", default="", help="The mailbox's own user name.")
        add_password_arguments(parser, what="the mailbox's password")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        email = options["email"]
        record = f"forward mailbox {email}"
        actor = command_actor(options, "mailboxes.add_mailbox")
        profile = EmailServerProfile.objects.filter(name=options["profile"]).first()
        if profile is None:
            raise CommandError(
                f'{record}: --profile: there is no email server profile named "{options["profile"]}".'
            )
        try:
            password = read_password(options)
        except CommandError as error:
            raise CommandError(f"{record}: {error}") from None
        credentials = bool(options["username"] or password)
        try:
            with transaction.atomic():
                mailbox = forward_mailbox_create(
                    name=options["name"],
                    email=email,
                    server_profile=profile,
                    delete_after_processing=options["delete_after_processing"],
                    allow_credentials=credentials,
                    username=options["username"],
                    password=password or "",
                    actor=actor,
                    via="create_forward_mailbox",
                )
        except ValidationError as error:
            raise CommandError(one_line(renamed(error, FLAGS), record=record)) from None
        own = f"; its own credentials, user name {mailbox.username}" if credentials else ""
        self.stdout.write(
            f'Created forward mailbox "{mailbox.name}" <{mailbox.email}> on email server profile '
            f'"{profile.name}"{own}.'
        )

import secrets
import string

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from mailboxadmin import history
from mailboxadmin.commands import ScriptCommand, add_password_arguments, one_line, read_password
from mailboxes.models import User
from mailboxes.services.users import user_create

GROUP = "System Administrator"
PASSWORD_ALPHABET = string.ascii_letters + string.digits


class Command(ScriptCommand):
    help = (
        "Create the first administrator: a superuser in the System Administrator group, "
        "unless an active superuser exists (then nothing changes). Without --password-stdin "
        "or --password-env the password is random and printed once, to standard output only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Default: admin.")
        parser.add_argument(
            "--email",
            default="admin@example.invalid",
            help="The administrator's address, which its mailbox uses (default: admin@example.invalid).",
        )
        add_password_arguments(parser, what="the administrator's password")

    def handle(self, *args, **options):
        username, email = options["username"], options["email"]
        chosen_password = read_password(options)
        with transaction.atomic():
            existing = list(
                User.objects.filter(is_superuser=True, is_active=True)
                .order_by("pk")
                .values_list("username", flat=True)[:3]
            )
            if existing:
                self.stdout.write(
                    f"An administrator already exists ({', '.join(existing)}); nothing created. "
                    f"Forgot the password? manage.py changepassword {existing[0]}"
                )
                return
            if User.objects.filter(username=username).exists():
                raise CommandError(
                    f"A user named {username!r} exists but is not an active superuser; "
                    "choose another --username."
                )
            try:
                group = Group.objects.get(name=GROUP)
            except Group.DoesNotExist:
                raise CommandError(f"The {GROUP} group is missing: run manage.py migrate first.") from None
            password = chosen_password or "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(20))
            try:
                user = user_create(
                    username=username,
                    email=email,
                    password=password,
                    full_name="Administrator",
                    is_staff=True,
                    is_superuser=True,
                )
            except ValidationError as exc:
                raise CommandError(one_line(exc, record=f"user {username}")) from None
            user.groups.add(group)
            history.log_addition(user, user, via="bootstrap_admin")

        self.stdout.write(f"Created the administrator {username!r} <{user.email}> in the {GROUP} group.")
        if chosen_password:
            self.stdout.write("Its password is the one you gave.")
        else:
            self.stdout.write(f"Password (shown only this once; change it after logging in): {password}")

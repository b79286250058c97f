from django.core.management.base import CommandError

from mailboxadmin.commands import ScriptCommand, add_actor_argument, resolve_actor
from mailboxes.models import Mailbox
from mailboxes.services.testing import can_test_mailboxes, run_mailbox_tests
from serverprofiles.models import EmailServerProfile


class Command(ScriptCommand):
    help = (
        "Run Test & Enable now (not through the background queue) for the named mailboxes, the "
        "active mailboxes of a server profile, or all active mailboxes. Connections to each server "
        "profile stay within its Maximum Concurrent Connections. Prints one line per mailbox: "
        "address, incoming, outgoing and appointments-contacts-tasks status, and the cause of any "
        "failure, separated by tabs. Exits 1 if any mailbox failed. "
        "Example: manage.py test_mailboxes alice@contoso.test --profile 'Contoso IMAP'"
    )

    def add_arguments(self, parser):
        parser.add_argument("addresses", nargs="*", metavar="ADDRESS", help="Email address of a mailbox.")
        parser.add_argument(
            "--profile", metavar="NAME", help="Also test every active mailbox of this server profile."
        )
        parser.add_argument(
            "--all", dest="all_mailboxes", action="store_true", help="Test every active mailbox."
        )
        add_actor_argument(parser)

    def handle(self, *args, addresses, profile, all_mailboxes, **options):
        if not addresses and not profile and not all_mailboxes:
            raise CommandError("Name at least one ADDRESS, or give --profile NAME or --all.")
        actor = resolve_actor(options.get("actor"))
        if actor is not None and not can_test_mailboxes(actor):
            raise CommandError(f'{actor.username} lacks the permission "Test & Enable Mailboxes".')
        ids = set()
        for address in addresses:
            pk = Mailbox.objects.with_email(address).values_list("pk", flat=True).first()
            if pk is None:
                raise CommandError(f"There is no mailbox with the address {address}.")
            ids.add(pk)
        if profile:
            found = EmailServerProfile.objects.filter(name=profile).first()
            if found is None:
                raise CommandError(f'--profile: there is no server profile named "{profile}".')
            ids.update(found.mailboxes.active().values_list("pk", flat=True))
        if all_mailboxes:
            ids.update(Mailbox.objects.active().values_list("pk", flat=True))
        if not ids:
            self.stdout.write("No active mailboxes to test.")
            return

        results = run_mailbox_tests(sorted(ids), actor=actor)
        for result in sorted(results, key=lambda r: r.email.lower()):
            if result.tested:
                statuses = [result.status(w) for w in ("incoming", "outgoing", "act")]
                cause = "; ".join(result.causes) or (result.note or "-")
            else:
                statuses, cause = ["-"] * 3, result.note
            incoming, outgoing, act = statuses
            self.stdout.write(f"{result.email}\tincoming={incoming}\toutgoing={outgoing}\tact={act}\t{cause}")
        failed = sum(1 for r in results if r.failed)
        if failed:
            raise CommandError(f"{failed} of {len(results)} mailboxes failed the test.", returncode=1)

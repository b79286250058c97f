from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from mailboxadmin.commands import Progress, ScriptCommand, add_actor_argument, command_actor, one_line
from mailboxes.models import ApprovalStatus, Mailbox
from mailboxes.services.mailboxes import mailbox_set_approval

BATCH = 1000


class Command(ScriptCommand):
    help = (
        "Approve the email addresses of user and queue mailboxes (Email Address Status → "
        "Approved), as the Approve Email command does. Name the mailboxes by address, or "
        "give --all-pending for every mailbox that is Pending Approval. Forward mailboxes "
        "are never approved. All or nothing: an unknown address approves none."
    )
    example = """
        manage.py approve_mailboxes alice@contoso.test support@contoso.test
        manage.py approve_mailboxes --all-pending
    """

    def add_arguments(self, parser):
        parser.add_argument("addresses", metavar="ADDRESS", nargs="*", help="Mailbox email addresses.")
        parser.add_argument(
            "--all-pending", action="store_true", help="Approve every mailbox that is Pending Approval."
        )
        add_actor_argument(parser)

    def handle(self, *args, **options):
        addresses, all_pending = options["addresses"], options["all_pending"]
        if not addresses and not all_pending:
            raise CommandError("Give the addresses of the mailboxes to approve, or --all-pending.")
        actor = command_actor(options, "mailboxes.approve_email")
        progress = Progress(self.stderr)
        approved = already = 0
        try:
            with transaction.atomic():
                for mailbox in self.named(addresses):
                    if mailbox.approval_status == ApprovalStatus.APPROVED:
                        already += 1
                        continue
                    mailbox_set_approval(mailbox=mailbox, approved=True, actor=actor)
                    approved += 1
                if all_pending:
                    for mailbox in self.pending():
                        mailbox_set_approval(mailbox=mailbox, approved=True, actor=actor)
                        approved += 1
                        progress("approved", approved)
        except ValidationError as error:
            raise CommandError(one_line(error, record="approve_mailboxes")) from None
        finally:
            progress.finish()
        was = f"; {already} {'was' if already == 1 else 'were'} already approved" if already else ""
        self.stdout.write(f"Approved {approved} mailbox{'' if approved == 1 else 'es'}{was}.")

    def named(self, addresses: list[str]) -> list[Mailbox]:
        """The mailboxes named, each once; an unknown or forward address stops everything."""
        mailboxes = {}
        for address in addresses:
            mailbox = Mailbox.objects.with_email(address).first()
            if mailbox is None:
                raise CommandError(f"mailbox {address}: there is no mailbox with this address.")
            if mailbox.is_forward:
                raise CommandError(
                    f"mailbox {address}: approval does not apply to forward mailboxes; nothing was approved."
                )
            mailboxes.setdefault(mailbox.pk, mailbox)
        return list(mailboxes.values())

    def pending(self):
        """Every mailbox Pending Approval, a batch at a time (memory stays flat)."""
        pending = Mailbox.objects.filter(approval_status=ApprovalStatus.PENDING).exclude(
            kind=Mailbox.Kind.FORWARD
        )
        last = 0
        while batch := list(pending.filter(pk__gt=last).order_by("pk")[:BATCH]):
            yield from batch
            last = batch[-1].pk

import pytest
from django.core.management.base import CommandError

from mailboxes.models import Mailbox


def status(address: str) -> str:
    return Mailbox.objects.get(email=address).approval_status


@pytest.fixture
def pending(make_user, make_queue, org):
    """Two user mailboxes and a queue mailbox, Pending Approval (the organisation requires it)."""
    make_user("alice", email="alice@contoso.test")
    make_user("bob", email="bob@contoso.test")
    make_queue(email="support@contoso.test")
    return ["alice@contoso.test", "bob@contoso.test", "support@contoso.test"]


def test_approves_the_named_mailboxes(run, pending):
    result = run("approve_mailboxes", "alice@contoso.test", "SUPPORT@contoso.test")

    assert status("alice@contoso.test") == status("support@contoso.test") == "approved"
    assert status("bob@contoso.test") == "pending"
    assert result.lines == ["Approved 2 mailboxes."]


def test_counts_those_already_approved(run, pending):
    run("approve_mailboxes", "alice@contoso.test")

    result = run("approve_mailboxes", "alice@contoso.test", "bob@contoso.test", "bob@contoso.test")

    assert result.lines == ["Approved 1 mailbox; 1 was already approved."]


def test_all_pending_approves_every_pending_user_and_queue_mailbox(
    run, pending, make_user, make_forward_mailbox, monkeypatch
):
    monkeypatch.setattr("mailboxes.management.commands.approve_mailboxes.BATCH", 2)  # several batches
    rejected = make_user("carol", email="carol@contoso.test").mailbox
    Mailbox.objects.filter(pk=rejected.pk).update(approval_status="rejected")
    make_forward_mailbox(email="fwd@contoso.test")
    waiting = Mailbox.objects.filter(approval_status="pending").count()  # with the queue owner's

    result = run("approve_mailboxes", "--all-pending")

    assert [status(a) for a in pending] == ["approved"] * 3
    assert not Mailbox.objects.filter(approval_status="pending").exists()
    assert status("carol@contoso.test") == "rejected"
    assert status("fwd@contoso.test") == "empty"
    assert result.lines == [f"Approved {waiting} mailboxes."]


def test_approval_bumps_the_version_and_is_recorded(run, pending, sysadmin):
    from django.contrib.admin.models import LogEntry

    before = Mailbox.objects.get(email="alice@contoso.test").version

    run("approve_mailboxes", "alice@contoso.test", "--actor", "sysadmin")

    assert Mailbox.objects.get(email="alice@contoso.test").version == before + 1
    assert LogEntry.objects.filter(user=sysadmin, change_message="Email address approved.").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], r"^Give the addresses of the mailboxes to approve, or --all-pending\.$"),
        (
            ["alice@contoso.test", "nobody@contoso.test"],
            r"^mailbox nobody@contoso.test: there is no mailbox with this address\.$",
        ),
        (
            ["alice@contoso.test", "fwd@contoso.test"],
            r"^mailbox fwd@contoso.test: approval does not apply to forward "
            r"mailboxes; nothing was approved\.$",
        ),
        (["--all-pending", "--actor", "reader"], r"^--actor: reader may not make this change"),
        (["--all-pending", "--actor", "ghost"], r"^--actor: there is no user named 'ghost'\.$"),
    ],
)
def test_errors_approve_nothing(
    run, pending, make_forward_mailbox, readonly, unchanged_database, args, message
):
    make_forward_mailbox(email="fwd@contoso.test")

    with unchanged_database(), pytest.raises(CommandError, match=message):
        run("approve_mailboxes", *args)

"""SPEC 8 end to end: one pass over a mailbox (mailboxes/processing/engine.py) against a real
Dovecot, the messages APPENDed by the test with IMAPClient and read over IMAP or POP3."""

import contextlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core.files.storage import FileSystemStorage
from imapclient import IMAPClient

from mailboxes.models import Email, FolderSync, IncomingMethod, Mailbox, MailboxAlert, SeenMessage
from mailboxes.processing.engine import UNPROCESSED, process_mailbox
from mailboxes.services.mailboxes import mailbox_save
from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME, running_dovecot

pytestmark = [pytest.mark.servers, pytest.mark.django_db]


@pytest.fixture(scope="module")
def dovecot(mail_certificates):
    """A Dovecot of this module's own: its tests empty and fill the test account's INBOX."""
    with running_dovecot(mail_certificates, prefix="mailboxadmin-dovecot-processing-") as server:
        yield server


@contextlib.contextmanager
def imap_admin(dovecot):
    """The test's own IMAP session on the account the mailboxes read."""
    client = IMAPClient(dovecot.plain_host, port=dovecot.imap_port, ssl=False, timeout=10)
    client.login(MAIL_USERNAME, MAIL_PASSWORD)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


@pytest.fixture
def account(dovecot):
    """The test account emptied: INBOX without messages, no Unprocessed folder."""

    class Account:
        def append(self, raw: bytes, when: datetime | None = None, folder: str = "INBOX") -> None:
            with imap_admin(dovecot) as client:
                client.append(folder, raw, msg_time=when)

        def messages(self, folder: str = "INBOX") -> list[bytes]:
            with imap_admin(dovecot) as client:
                if not client.folder_exists(folder):
                    return []
                client.select_folder(folder, readonly=True)
                uids = client.search(["UNDELETED"])
                return [data[b"BODY[]"] for _uid, data in sorted(client.fetch(uids, ["BODY.PEEK[]"]).items())]

        def subjects(self, folder: str = "INBOX") -> list[str]:
            return sorted(_subject(raw) for raw in self.messages(folder))

    with imap_admin(dovecot) as client:
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        if uids:
            client.delete_messages(uids)
            client.expunge()
        if client.folder_exists(UNPROCESSED):
            client.delete_folder(UNPROCESSED)
    return Account()


def _subject(raw: bytes) -> str:
    import email

    return str(email.message_from_bytes(raw)["Subject"])


def message(
    subject: str,
    *,
    to: str = "someone@example.test",
    cc: str = "",
    sender: str = "sender@example.org",
    body: str = "Hello.\n",
    message_id: str | None = "",
    date: datetime | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    if message_id is not None:
        msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def forwarded(original: bytes, *, subject: str = "FW: forwarded") -> bytes:
    """`original` forwarded as an attachment (message/rfc822), as the CRM documents."""
    import email
    import email.policy

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "mailer-daemon@example.test"
    msg["To"] = MAIL_USERNAME
    msg["Message-ID"] = make_msgid(domain="forwarder.example.test")
    msg.set_content("Forwarded by the server's rule.\n")
    msg.add_attachment(email.message_from_bytes(original, policy=email.policy.default))
    return msg.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


@pytest.fixture
def imap_profile(make_test_server_profile):
    return make_test_server_profile(incoming="imap")


@pytest.fixture
def pop3_profile(make_test_server_profile):
    return make_test_server_profile(incoming="pop3")


def enabled(mailbox: Mailbox) -> Mailbox:
    """As Test & Enable leaves a mailbox that passed."""
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled_incoming=True)
    return Mailbox.objects.select_related("server_profile").get(pk=mailbox.pk)


@pytest.fixture
def own_mailbox(make_test_mailbox, no_approval_required):
    def make(profile, **fields) -> Mailbox:
        return enabled(make_test_mailbox(profile, outgoing_method="none", **fields))

    return make


@pytest.fixture
def queue_mailbox(make_queue, no_approval_required):
    """A queue mailbox reading the test account (queues may delete after processing)."""

    def make(profile, **fields) -> Mailbox:
        mailbox = make_queue().mailbox
        values = {
            "server_profile": profile,
            "incoming_method": IncomingMethod.SERVER_SIDE_SYNC,
            "allow_credentials": True,
            "username": MAIL_USERNAME,
        }
        values.update(fields)
        for name, value in values.items():
            setattr(mailbox, name, value)
        mailbox.set_password(MAIL_PASSWORD)
        return enabled(mailbox_save(mailbox))

    return make


class RefusingStorage(FileSystemStorage):
    """A file storage that refuses its `refuse`-th save (a full disk, an S3 outage)."""

    def __init__(self, *args, refuse: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.refuse, self.saves = refuse, 0

    def _save(self, name, content):
        self.saves += 1
        if self.saves == self.refuse:
            raise OSError(28, "No space left on device")
        return super()._save(name, content)


@pytest.fixture
def refusing_storage(monkeypatch, tmp_path):
    def install(refuse: int) -> RefusingStorage:
        storage = RefusingStorage(location=tmp_path / "emails", refuse=refuse)
        monkeypatch.setattr(Email._meta.get_field("raw"), "storage", storage)
        return storage

    return install


# Own mailboxes: IMAP ------------------------------------------------------------------


def test_imap_records_new_messages_once_and_a_second_pass_records_nothing(account, imap_profile, own_mailbox):
    mailbox = own_mailbox(imap_profile)
    for n in range(3):
        account.append(message(f"Hello {n}", to=mailbox.email))

    first = process_mailbox(mailbox)
    second = process_mailbox(mailbox)

    assert (first.fetched, first.recorded, first.failed, first.cause) == (3, 3, 0, None), first
    assert (second.fetched, second.recorded, second.failed) == (0, 0, 0), second
    emails = list(Email.objects.filter(mailbox=mailbox).order_by("subject"))
    assert [e.subject for e in emails] == ["Hello 0", "Hello 1", "Hello 2"]
    assert all(e.regarding_user_id == mailbox.user_id and e.regarding_queue_id is None for e in emails)
    assert all(e.raw.read().startswith(b"Subject: Hello") for e in emails)
    assert len(account.messages()) == 3  # Delete Emails After Processing is No: all stay
    folder = FolderSync.objects.get(mailbox=mailbox, folder="INBOX")
    assert folder.last_uid == 3


def test_imap_delete_after_processing_deletes_only_what_was_committed(
    account, imap_profile, queue_mailbox, refusing_storage
):
    mailbox = queue_mailbox(imap_profile, delete_after_processing=True)
    for n in range(5):
        account.append(message(f"Queue {n}"))
    refusing_storage(refuse=3)

    first = process_mailbox(mailbox)

    assert (first.fetched, first.recorded, first.deleted, first.failed) == (5, 4, 4, 1), first
    assert account.subjects() == ["Queue 2"]  # the one whose raw message could not be saved
    assert sorted(Email.objects.filter(mailbox=mailbox).values_list("subject", flat=True)) == [
        "Queue 0",
        "Queue 1",
        "Queue 3",
        "Queue 4",
    ]
    assert Email.objects.filter(mailbox=mailbox, regarding_queue_id=mailbox.queue_id).count() == 4
    assert MailboxAlert.objects.filter(
        mailbox=mailbox, severity="error", message__contains="Queue 2"
    ).exists()

    second = process_mailbox(mailbox)

    assert (second.recorded, second.deleted, second.failed) == (1, 1, 0), second
    assert account.messages() == []
    assert Email.objects.filter(mailbox=mailbox).count() == 5


def test_imap_a_message_recorded_but_not_deleted_is_deleted_by_the_next_pass_not_recorded_again(
    account, imap_profile, queue_mailbox
):
    mailbox = queue_mailbox(imap_profile)  # not deleting yet
    account.append(message("Left behind"))
    assert process_mailbox(mailbox).recorded == 1
    Mailbox.objects.filter(pk=mailbox.pk).update(delete_after_processing=True)
    mailbox.refresh_from_db()

    result = process_mailbox(mailbox)

    assert (result.recorded, result.deleted) == (0, 1), result
    assert account.messages() == []
    assert Email.objects.filter(mailbox=mailbox).count() == 1


def test_imap_uidvalidity_change_rescans_without_duplicates(account, dovecot, imap_profile, own_mailbox):
    mailbox = own_mailbox(imap_profile)
    originals = [message(f"Renumbered {n}", to=mailbox.email) for n in range(3)]
    for raw in originals:
        account.append(raw)
    assert process_mailbox(mailbox).recorded == 3
    before = FolderSync.objects.get(mailbox=mailbox, folder="INBOX").uidvalidity
    # The folder recreated: Dovecot renames INBOX away (a fresh INBOX, new UIDVALIDITY),
    # and the same messages come back, plus one new.
    with imap_admin(dovecot) as client:
        client.rename_folder("INBOX", "Old")
        client.delete_folder("Old")
    for raw in originals:
        account.append(raw)
    account.append(message("Renumbered new", to=mailbox.email))

    result = process_mailbox(mailbox)

    folder = FolderSync.objects.get(mailbox=mailbox, folder="INBOX")
    assert folder.uidvalidity != before
    assert (result.fetched, result.recorded, result.failed) == (4, 1, 0), result
    assert Email.objects.filter(mailbox=mailbox).count() == 4


# Own mailboxes: POP3 ------------------------------------------------------------------


def test_pop3_records_new_messages_once_and_remembers_them_by_uidl(account, pop3_profile, own_mailbox):
    mailbox = own_mailbox(pop3_profile)
    for n in range(3):
        account.append(message(f"Pop {n}", to=mailbox.email))

    first = process_mailbox(mailbox)
    second = process_mailbox(mailbox)

    assert (first.fetched, first.recorded, first.failed, first.cause) == (3, 3, 0, None), first
    assert (second.fetched, second.recorded) == (0, 0), second
    assert SeenMessage.objects.filter(mailbox=mailbox).count() == 3
    assert len(account.messages()) == 3
    assert sorted(Email.objects.filter(mailbox=mailbox).values_list("subject", flat=True)) == [
        "Pop 0",
        "Pop 1",
        "Pop 2",
    ]


def test_pop3_delete_after_processing_deletes_only_what_was_committed(
    account, pop3_profile, queue_mailbox, refusing_storage
):
    mailbox = queue_mailbox(pop3_profile, delete_after_processing=True)
    for n in range(4):
        account.append(message(f"Pop queue {n}"))
    refusing_storage(refuse=3)

    first = process_mailbox(mailbox)

    assert (first.fetched, first.recorded, first.deleted, first.failed) == (4, 3, 3, 1), first
    assert account.subjects() == ["Pop queue 2"]
    second = process_mailbox(mailbox)
    assert (second.recorded, second.deleted) == (1, 1), second
    assert account.messages() == []
    assert Email.objects.filter(mailbox=mailbox).count() == 4
    assert not SeenMessage.objects.filter(mailbox=mailbox).exists()  # deleted, not remembered

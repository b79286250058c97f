"""SPEC 8 end to end: one pass over a mailbox (mailboxes/processing/engine.py) against a real
Dovecot, the messages APPENDed by the test with IMAPClient and read over IMAP or POP3."""

import contextlib
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from imapclient import IMAPClient

from mailboxes.models import Email, FolderSync, IncomingMethod, Mailbox, MailboxAlert, SeenMessage
from mailboxes.processing.engine import UNPROCESSED, process_mailbox
from mailboxes.services.emails import message_text
from mailboxes.services.mailboxes import mailbox_save
from tests.fixtures.mailservers import LOOPBACK, MAIL_PASSWORD, MAIL_USERNAME, running_dovecot

pytestmark = [pytest.mark.servers, pytest.mark.django_db]


@pytest.fixture(scope="module")
def dovecot(mail_certificates):
    """A Dovecot of this module's own: its tests empty and fill the test account's INBOX."""
    with running_dovecot(mail_certificates, prefix="mailboxadmin-dovecot-processing-") as server:
        yield server


@contextlib.contextmanager
def imap_admin(dovecot, timeout: float = 10):
    """The test's own IMAP session on the account the mailboxes read."""
    client = IMAPClient(dovecot.plain_host, port=dovecot.imap_port, ssl=False, timeout=timeout)
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

    with imap_admin(dovecot, timeout=60) as client:
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


def test_imap_a_pass_stopped_between_store_deleted_and_expunge_is_finished_by_the_next(
    account, dovecot, imap_profile, queue_mailbox
):
    """A pass killed after UID STORE \\Deleted and before UID EXPUNGE leaves recorded
    messages flagged: the next pass expunges them (found by a kill in the workers' tests)."""
    mailbox = queue_mailbox(imap_profile)
    account.append(message("Flagged, not expunged"))
    assert process_mailbox(mailbox).recorded == 1
    with imap_admin(dovecot) as client:  # what the killed pass had done
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
    Mailbox.objects.filter(pk=mailbox.pk).update(delete_after_processing=True)
    mailbox.refresh_from_db()

    result = process_mailbox(mailbox)

    assert (result.recorded, result.deleted) == (0, 1), result
    with imap_admin(dovecot) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["ALL"]) == []  # expunged, not only flagged
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
    assert MailboxAlert.objects.filter(
        mailbox=mailbox, severity="information", message__contains="UIDVALIDITY"
    ).exists()


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


# Forward mailboxes --------------------------------------------------------------------


@pytest.fixture
def forward_setup(make_forward_mailbox, make_user, make_queue, org, imap_profile, pop3_profile):
    """A forward mailbox on the test account; two users and a queue whose Incoming Email is
    Forward Mailbox (approval required, and given); one more user awaiting approval."""
    from mailboxes.models import ApprovalStatus

    def make(*, incoming: str = "imap", delete: bool = False):
        profile = imap_profile if incoming == "imap" else pop3_profile
        forward = enabled(
            make_forward_mailbox(
                server_profile=profile,
                allow_credentials=True,
                username=MAIL_USERNAME,
                password=MAIL_PASSWORD,
                delete_after_processing=delete,
            )
        )
        targets = [make_user().mailbox, make_user().mailbox, make_queue().mailbox, make_user().mailbox]
        for target in targets:
            target.server_profile = profile
            target.incoming_method = IncomingMethod.FORWARD_MAILBOX
            mailbox_save(target)
        approved, pending = targets[:3], targets[3]
        Mailbox.objects.filter(pk__in=[t.pk for t in approved]).update(
            approval_status=ApprovalStatus.APPROVED
        )
        Mailbox.objects.filter(pk=pending.pk).update(approval_status=ApprovalStatus.PENDING)
        return forward, *approved, pending

    return make


def test_forward_mailbox_records_each_original_for_each_recipient_mailbox(account, forward_setup):
    forward, alice, bob, support, pending = forward_setup(delete=True)
    to_alice_cc_support = message("For Alice and Support", to=alice.email, cc=support.email)
    to_bob = message("For Bob", to=f"Bob <{bob.email.upper()}>")
    account.append(forwarded(to_alice_cc_support))
    account.append(forwarded(to_bob))
    account.append(message("Not forwarded", to=alice.email))  # plain: no attachment
    account.append(forwarded(message("For nobody", to="nobody@example.test")))
    account.append(forwarded(message("For the pending one", to=pending.email)))

    assert forward.delete_after_processing
    result = process_mailbox(forward)

    assert (result.fetched, result.recorded, result.unmatched, result.deleted, result.failed) == (
        5,
        3,
        3,
        2,
        0,
    ), result
    recorded = {(e.mailbox_id, e.subject) for e in Email.objects.all()}
    assert recorded == {
        (alice.pk, "For Alice and Support"),
        (support.pk, "For Alice and Support"),
        (bob.pk, "For Bob"),
    }
    for email in Email.objects.all():
        assert email.forward_mailbox_id == forward.pk
        target = Mailbox.objects.get(pk=email.mailbox_id)
        assert (email.regarding_user_id, email.regarding_queue_id) == (target.user_id, target.queue_id)
        assert email.raw.read().startswith(b"Subject: For")  # the original, not the forward
    # Never deleted unless recorded: the three others are in Unprocessed, nothing lost.
    assert account.messages() == []
    assert account.subjects(UNPROCESSED) == ["FW: forwarded", "FW: forwarded", "Not forwarded"]
    alerts = list(
        MailboxAlert.objects.filter(mailbox=forward, severity="warning").values_list("message", flat=True)
    )
    assert len(alerts) == 3
    assert any("not a forwarded message" in a for a in alerts)
    assert any("matches no mailbox" in a and "nobody@example.test" in a for a in alerts)
    assert any(f"{pending.email} is not approved" in a for a in alerts)

    again = process_mailbox(forward)
    assert (again.fetched, again.recorded, again.unmatched) == (0, 0, 0), again


def test_forward_mailbox_without_deleting_remembers_and_records_nothing_twice(account, forward_setup):
    forward, alice, *_ = forward_setup()
    account.append(forwarded(message("Kept", to=alice.email)))

    first = process_mailbox(forward)
    second = process_mailbox(forward)

    assert (first.recorded, first.deleted, second.fetched, second.recorded) == (1, 0, 0, 0), (first, second)
    assert account.subjects() == ["FW: forwarded"]
    assert Email.objects.filter(mailbox=alice).count() == 1


def test_forward_mailbox_over_pop3_leaves_the_unmatched_and_never_fetches_them_again(account, forward_setup):
    forward, alice, *_ = forward_setup(incoming="pop3", delete=True)
    account.append(forwarded(message("Over POP3", to=alice.email)))
    account.append(message("Plain over POP3", to=alice.email))

    first = process_mailbox(forward)
    second = process_mailbox(forward)

    assert (first.recorded, first.unmatched, first.deleted) == (1, 1, 1), first
    assert (second.fetched, second.recorded) == (0, 0), second
    assert account.subjects() == ["Plain over POP3"]
    assert Email.objects.get(mailbox=alice).subject == "Over POP3"
    assert (
        MailboxAlert.objects.filter(mailbox=forward, message__contains="not a forwarded message").count() == 1
    )


# Faults -------------------------------------------------------------------------------


class CuttingProxy:
    """Forwards LOOPBACK:port to Dovecot, cutting each connection after `limit` bytes from
    the server (the first connection only), as a network or a server that dies mid-fetch."""

    def __init__(self, upstream: tuple[str, int], limit: int):
        self.upstream, self.limit = upstream, limit
        self.connections = 0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.limit if self.connections == 1 else None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client, limit):
        upstream = socket.create_connection(self.upstream)

        def close():
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        def pump(source, target, budget):
            sent = 0
            try:
                while data := source.recv(4096):
                    if budget is not None and sent + len(data) >= budget:
                        target.sendall(data[: budget - sent])
                        break
                    target.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            close()

        threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
        pump(upstream, client, limit)

    def close(self):
        self._listener.close()


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_server_drops_the_connection_mid_fetch_then_the_next_pass_records_each_once(
    account, dovecot, make_test_server_profile, queue_mailbox, incoming, monkeypatch
):
    from mailboxes.processing import engine

    monkeypatch.setattr(engine, "BODY_GROUP", 3)  # a group committed before the cut
    port = dovecot.imap_port if incoming == "imap" else dovecot.pop3_port
    proxy = CuttingProxy((dovecot.plain_host, port), limit=9000)
    try:
        profile = make_test_server_profile(
            incoming=incoming, incoming_server=LOOPBACK, incoming_port=proxy.port
        )
        mailbox = queue_mailbox(profile, delete_after_processing=True)
        for n in range(12):
            account.append(message(f"Cut {n}", body="x" * 1500 + "\n"))

        first = process_mailbox(mailbox)
        second = process_mailbox(mailbox)
    finally:
        proxy.close()

    assert first.cause and first.transient and first.failed == 1, first
    assert "Server error" in first.cause
    assert 0 < first.recorded < 12, first  # cut in the middle, after a group was committed
    assert second.cause is None, second
    assert first.recorded + second.recorded == 12
    assert Email.objects.filter(mailbox=mailbox).count() == 12
    assert account.messages() == []


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_awkward_messages_are_recorded(account, make_test_server_profile, own_mailbox, settings, incoming):
    settings.MAIL_MAX_MESSAGE_SIZE = 20_000
    mailbox = own_mailbox(make_test_server_profile(incoming=incoming))
    broken_mime = (
        b"Subject: Broken MIME\r\nMessage-ID: <broken@example.org>\r\n"
        b"Content-Type: multipart/mixed; boundary=never-there\r\n\r\nno boundary at all\r\n"
    )
    legacy = (
        "Subject: Caf\xe9 cr\xe8me \x80 price\r\nFrom: J\xf6rg <j@example.org>\r\nTo: x@example.test\r\n"
        "Message-ID: <legacy@example.org>\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n"
        "Body with \x80 and \xe9\r\n"
    ).encode("latin-1")
    encoded = message("=?iso-8859-1?q?Gr=FC=DFe?=", message_id="<encoded@example.org>")
    no_id = message("Without Message-ID", message_id=None)
    large = message("Too large", body="y" * 30_000 + "\n")
    # Past poplib's usual 2,048 bytes a line.
    one_line = b"Subject: One long line\r\nMessage-ID: <long@example.org>\r\n\r\n" + b"z" * 15_000 + b"\r\n"
    for raw in (broken_mime, legacy, encoded, no_id, large, one_line):
        account.append(raw)
    account.append(message("After the broken one"))

    result = process_mailbox(mailbox)

    assert (result.fetched, result.recorded, result.failed) == (7, 7, 0), result
    emails = {e.subject: e for e in Email.objects.filter(mailbox=mailbox)}
    assert b"z" * 15_000 in emails["One long line"].raw.read()
    assert emails["Broken MIME"].malformed
    assert emails["Broken MIME"].raw.read() == broken_mime
    assert "Café crème € price" in emails, list(emails)
    assert emails["Café crème € price"].from_address == "Jörg <j@example.org>"
    assert message_text(emails["Café crème € price"].raw.read()).strip() == "Body with € and é"
    assert "Grüße" in emails
    assert emails["Without Message-ID"].message_id == ""
    assert len(emails["Without Message-ID"].digest) == 64
    assert emails["Too large"].headers_only and emails["Too large"].size > 30_000
    assert b"yyyy" not in emails["Too large"].raw.read()
    alerts = MailboxAlert.objects.filter(mailbox=mailbox)
    assert alerts.filter(severity="error", message__contains="Broken MIME").count() == 1
    assert alerts.filter(severity="warning", message__contains="Too large").count() == 1


def test_mail_received_before_the_cutoff_is_skipped(account, imap_profile, pop3_profile, own_mailbox):
    cutoff = datetime(2026, 6, 1, tzinfo=UTC)
    imap = own_mailbox(imap_profile, process_email_after=cutoff)
    old, new = cutoff - timedelta(days=3), cutoff + timedelta(days=3)
    account.append(message("Old", date=old, message_id="<old@example.org>"), when=old)
    account.append(message("New", date=new, message_id="<new@example.org>"), when=new)

    result = process_mailbox(imap)

    assert (result.fetched, result.recorded) == (1, 1), result
    assert list(Email.objects.filter(mailbox=imap).values_list("subject", flat=True)) == ["New"]
    # The profile's Process Email From counts when the mailbox sets none (POP3: the date
    # from the headers).
    pop3_profile.process_email_from = cutoff
    pop3_profile.save()
    pop3 = own_mailbox(pop3_profile)
    result = process_mailbox(pop3)
    assert (result.fetched, result.recorded) == (1, 1), result
    assert list(Email.objects.filter(mailbox=pop3).values_list("subject", flat=True)) == ["New"]


# Not processed, failures and secrets --------------------------------------------------


def test_a_mailbox_not_processed_is_skipped_not_failed(imap_profile, own_mailbox):
    mailbox = own_mailbox(imap_profile)
    Mailbox.objects.filter(pk=mailbox.pk).update(state=Mailbox.State.INACTIVE)
    mailbox.refresh_from_db()

    result = process_mailbox(mailbox)

    assert result.skipped == "the mailbox is inactive"
    assert (result.failed, result.transient, result.pass_failed) == (0, False, False)
    assert result.as_json()["cause"] == "Not processed: the mailbox is inactive."
    assert set(result.as_json()) == {
        "mailbox",
        "fetched",
        "recorded",
        "unmatched",
        "deleted",
        "failed",
        "cause",
    }


def test_wrong_password_is_a_permanent_failure_without_the_password_anywhere(
    account, imap_profile, own_mailbox, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = 'Wr0ng-"secret"-77'
    mailbox = own_mailbox(imap_profile, password=wrong)
    account.append(message("Unread"))

    result = process_mailbox(mailbox)

    assert result.cause.startswith("Authentication failed"), result
    assert (result.failed, result.transient) == (1, False)
    assert wrong not in str(result) and wrong not in caplog.text
    assert not MailboxAlert.objects.filter(message__contains=wrong).exists()


def test_closed_port_is_a_transient_failure(make_test_server_profile, own_mailbox, closed_port):
    mailbox = own_mailbox(
        make_test_server_profile(incoming="imap", incoming_server=LOOPBACK, incoming_port=closed_port)
    )

    result = process_mailbox(mailbox)

    assert result.cause.startswith("Connection refused") and result.transient, result


def test_the_connection_slot_is_held_while_processing(account, imap_profile, own_mailbox, monkeypatch):
    from mailboxes.processing import engine
    from serverprofiles.models import ConnectionSlot

    mailbox = own_mailbox(imap_profile)
    account.append(message("Slot"))
    held_while_recording = []
    commit = engine.emails_commit

    def spy(records):
        held_while_recording.append(
            ConnectionSlot.objects.filter(profile=imap_profile).exclude(holder="").count()
        )
        return commit(records)

    monkeypatch.setattr(engine, "emails_commit", spy)

    assert process_mailbox(mailbox).recorded == 1
    assert held_while_recording == [1]
    assert not ConnectionSlot.objects.filter(profile=imap_profile).exclude(holder="").exists()


@pytest.mark.parametrize("count", [5, 40])
def test_queries_per_pass_do_not_grow_with_the_messages(account, imap_profile, queue_mailbox, count):
    """A group's rows go in one INSERT and its check for duplicates in one SELECT: the
    queries of a pass are fixed, whatever the number of messages (up to a group)."""
    mailbox = queue_mailbox(imap_profile, delete_after_processing=True)
    for n in range(count):
        account.append(message(f"Counted {n}"))
    mailbox = Mailbox.objects.select_related("server_profile").get(pk=mailbox.pk)

    with CaptureQueriesContext(connection) as queries:
        result = process_mailbox(mailbox)

    assert (result.recorded, result.deleted) == (count, count), result
    statements = [q["sql"] for q in queries.captured_queries]
    # The settings; the profile's slots (made at this first claim: 4), claimed (2),
    # renewed before the metadata and the group (2), released (1); the folder's sync (made:
    # 4); recorded already?, the INSERT and what was stored (3).
    assert len(statements) == 17, "\n".join(sql[:100] for sql in statements)
    assert sum(sql.startswith("INSERT") and 'INTO "mailboxes_email"' in sql for sql in statements) == 1


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_an_oauth_profile_processes_too(
    oauth_dovecot, oauth_server, make_user, no_approval_required, caplog, incoming
):
    """SPEC 7: the SASL user is the mailbox's address; the token from the token server."""
    from serverprofiles import oauth
    from serverprofiles.models import AuthenticationMethod, EmailServerProfile, ServerType
    from serverprofiles.services import profile_create

    caplog.set_level(logging.DEBUG)
    oauth.cache_clear()
    with imap_admin(oauth_dovecot) as client:
        client.select_folder("INBOX")
        if uids := client.search(["ALL"]):
            client.delete_messages(uids)
            client.expunge()
        client.append("INBOX", message(f"Over OAuth {incoming}"))
    profile = EmailServerProfile(
        name=f"OAuth processing {incoming}",
        server_type=ServerType.IMAP_SMTP if incoming == "imap" else ServerType.POP3_SMTP,
        incoming_server=oauth_dovecot.plain_host,
        incoming_port=oauth_dovecot.imap_port if incoming == "imap" else oauth_dovecot.pop3_port,
        incoming_ssl=False,
        outgoing_server=LOOPBACK,
        outgoing_port=25,
        outgoing_ssl=False,
        timeout_ms=3000,
        allow_unencrypted_credentials=True,
        incoming_auth=AuthenticationMethod.OAUTH2,
        oauth_provider="other",
        oauth_token_url=oauth_server.token_url,
        oauth_client_id=oauth_server.client_id,
        oauth_scope="https://outlook.office365.com/.default",
    )
    profile.set_oauth_client_secret(oauth_server.client_secret)
    profile = profile_create(profile)
    mailbox = make_user(email=MAIL_USERNAME).mailbox  # the SASL user: the mailbox's address
    mailbox.server_profile = profile
    mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
    mailbox = enabled(mailbox_save(mailbox))

    try:
        result = process_mailbox(mailbox)
    finally:
        oauth.cache_clear()

    assert (result.recorded, result.cause) == (1, None), result
    assert Email.objects.get(mailbox=mailbox).subject == f"Over OAuth {incoming}"
    assert oauth_server.client_secret not in caplog.text
    assert oauth_server.requests, "the token came from the token server"


# Sessions on the connectors -----------------------------------------------------------


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_a_session_passes_the_callers_own_errors_through_and_raises_the_servers_as_session_failed(
    dovecot, incoming
):
    from serverprofiles.connectors import Cause, Endpoint
    from serverprofiles.connectors.dialogue import SessionFailed
    from serverprofiles.connectors.imap import imap_session
    from serverprofiles.connectors.pop3 import pop3_session

    session = imap_session if incoming == "imap" else pop3_session
    port = dovecot.imap_port if incoming == "imap" else dovecot.pop3_port

    def endpoint(password):
        return Endpoint(
            incoming,
            dovecot.plain_host,
            port,
            ssl=False,
            username=MAIL_USERNAME,
            password=password,
            timeout=2,
            allow_unencrypted_credentials=True,
        )

    with pytest.raises(LookupError, match="the caller's"):
        with session(endpoint(MAIL_PASSWORD)):
            raise LookupError("the caller's")
    with pytest.raises(SessionFailed) as refused:
        with session(endpoint("wrong-password")):
            pytest.fail("a session that could not log in was opened")
    assert refused.value.outcome.cause == Cause.AUTHENTICATION_FAILED
    assert "wrong-password" not in str(refused.value)
    with session(endpoint(MAIL_PASSWORD)) as opened:
        opened.renew()  # a new deadline for the next batch
        opened.step = "counting"
        if incoming == "imap":
            assert "UIDPLUS" in opened.capabilities  # as announced after login
            assert opened.client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 0
        else:
            assert opened.client.message_count() >= 0


def test_a_forward_mailboxs_queries_do_not_grow_with_messages_or_recipients(
    account, forward_setup, make_user
):
    """Routing a group to many mailboxes: one lookup of the recipients' mailboxes, one
    "recorded already?", one INSERT, whatever the number of originals and recipients."""
    from mailboxes.models import ApprovalStatus

    forward, alice, *_ = forward_setup(delete=True)

    def pass_with(count: int) -> int:
        users = [make_user().mailbox for _ in range(count)]
        for user in users:
            user.server_profile = forward.server_profile
            user.incoming_method = IncomingMethod.FORWARD_MAILBOX
            mailbox_save(user)
        Mailbox.objects.filter(pk__in=[u.pk for u in users]).update(approval_status=ApprovalStatus.APPROVED)
        for user in users:
            account.append(forwarded(message(f"To {user.email}", to=user.email, cc=alice.email)))
        with CaptureQueriesContext(connection) as queries:
            result = process_mailbox(forward)
        assert (result.recorded, result.deleted, result.unmatched) == (2 * count, count, 0), result
        return len(queries)

    pass_with(1)  # the first pass makes the profile's slots and the folder's sync
    assert pass_with(3) == pass_with(15) == 11


def test_no_free_connection_is_skipped_for_now_not_failed(account, imap_profile, own_mailbox):
    from serverprofiles.connection_cap import connection_slot

    mailbox = own_mailbox(imap_profile)
    imap_profile.max_connections = 1
    imap_profile.save()
    account.append(message("Waiting"))

    with connection_slot(imap_profile):  # Test & Enable, or another worker, holds the one
        result = process_mailbox(mailbox, slot_wait=0.2)

    assert (result.skipped, result.transient, result.failed, result.pass_failed) == (
        "every connection the server profile allows is in use",
        True,
        0,
        False,
    )
    assert "Maximum Concurrent" in result.cause
    assert process_mailbox(mailbox).recorded == 1


def test_forward_mailbox_an_original_for_an_inactive_mailbox_goes_to_unprocessed(account, forward_setup):
    forward, alice, bob, *_ = forward_setup()
    Mailbox.objects.filter(pk=bob.pk).update(state=Mailbox.State.INACTIVE)
    account.append(forwarded(message("For the inactive one", to=bob.email)))
    account.append(forwarded(message("For Alice, not the inactive one", to=alice.email, cc=bob.email)))

    result = process_mailbox(forward)

    assert (result.recorded, result.unmatched) == (1, 1), result
    assert Email.objects.get().mailbox_id == alice.pk
    assert account.subjects(UNPROCESSED) == ["FW: forwarded"]
    assert (
        MailboxAlert.objects.filter(mailbox=forward, message__contains=f"{bob.email} is inactive").count()
        == 1
    )


def test_a_session_reads_a_search_answer_longer_than_a_greeting_may_be(account, dovecot):
    """UID SEARCH answers every UID in one line: past 64 KiB for a folder of 14,000."""
    from serverprofiles.connectors import Endpoint
    from serverprofiles.connectors.imap import imap_session

    tiny = [b"Subject: t\r\n\r\nx\r\n"] * 14_000
    with imap_admin(dovecot, timeout=60) as client:  # 14,000 files written on a busy machine
        client.multiappend("INBOX", tiny)
    endpoint = Endpoint(
        "imap",
        dovecot.plain_host,
        dovecot.imap_port,
        ssl=False,
        username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
        timeout=60,
        allow_unencrypted_credentials=True,
    )

    with imap_session(endpoint) as session:
        session.client.select_folder("INBOX", readonly=True)
        assert len(session.client.search(["ALL"])) == 14_000

"""Recording email (mailboxes/services/emails.py): parsing what real mail contains, the
digest that keeps a message to one Email per mailbox, and the raw file kept with its row."""

import hashlib
import os
from datetime import UTC, datetime

import pytest

from mailboxes.models import Email
from mailboxes.services.emails import (
    email_prepare,
    email_record,
    emails_commit,
    message_digest,
    message_parse,
)

pytestmark = pytest.mark.django_db

PLAIN = (
    b"Subject: =?iso-8859-1?q?R=E9sum=E9?=\r\nFrom: =?utf-8?b?SsO2cmc=?= <j@example.org>\r\n"
    b'To: a@example.test, "Doe, Jane" <JANE@example.test>\r\nCc: c@example.test\r\n'
    b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\nMessage-ID: <abc@example.org>\r\n\r\nHello\r\n"
)


def test_fields_are_decoded():
    parsed = message_parse(PLAIN)

    assert parsed.subject == "Résumé"
    assert parsed.from_address == "Jörg <j@example.org>"
    assert parsed.to == ["a@example.test", '"Doe, Jane" <JANE@example.test>']
    assert parsed.addresses() == {"a@example.test", "jane@example.test", "c@example.test"}
    assert parsed.sent_on == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert parsed.message_id == "<abc@example.org>" and not parsed.malformed


def test_digest_is_the_message_id_normalised_else_the_raw_message():
    assert message_digest("<abc@example.org>", b"one") == message_digest("  abc@example.org ", b"two")
    assert message_digest("", b"raw bytes") == hashlib.sha256(b"raw bytes").hexdigest()
    without_id = PLAIN.replace(b"Message-ID: <abc@example.org>\r\n", b"")
    assert message_parse(without_id).digest == hashlib.sha256(without_id).hexdigest()


def test_legacy_8bit_headers_are_read_as_windows_1252():
    raw = "Subject: Prix \x80 5, caf\xe9\r\nFrom: Ren\xe9 <r@example.org>\r\n\r\nx\r\n".encode("latin-1")

    parsed = message_parse(raw)

    assert (parsed.subject, parsed.from_address) == ("Prix € 5, café", "René <r@example.org>")


def test_utf8_headers_stay_utf8():
    parsed = message_parse("Subject: Grüße aus Köln\r\n\r\nx\r\n".encode())

    assert parsed.subject == "Grüße aus Köln"


def test_attachments_are_listed():
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "With files"
    msg.set_content("See attached.")
    msg.add_attachment(b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment("a,b\n", subtype="csv", filename="data.csv")

    parsed = message_parse(msg.as_bytes())

    assert parsed.attachments == [
        {"name": "report.pdf", "type": "application/pdf", "size": 13},
        {"name": "data.csv", "type": "text/csv", "size": 4},
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"no headers here at all, just text\r\n",
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\nno parts\r\n",
        b"\x00\xff\xfe garbage \x00",
    ],
)
def test_what_cannot_be_parsed_is_malformed_not_refused(raw):
    parsed = message_parse(raw)

    assert parsed.malformed
    assert len(parsed.digest) == 64


def test_a_message_recorded_twice_is_one_email_and_leaves_no_orphan_file(make_user):
    mailbox = make_user().mailbox
    parsed = message_parse(PLAIN)
    moment = datetime(2026, 12, 7, tzinfo=UTC)

    first = email_record(mailbox, PLAIN, parsed, received_on=moment, size=len(PLAIN))
    second = email_record(mailbox, PLAIN + b"(a resend)\r\n", parsed, received_on=moment, size=len(PLAIN))

    assert first is not None and second is None
    assert Email.objects.filter(mailbox=mailbox).count() == 1
    email = Email.objects.get(mailbox=mailbox)
    assert (email.regarding_user_id, email.regarding_queue_id) == (mailbox.user_id, None)
    folder = os.path.dirname(email.raw.path)
    # (The folder is the run's: other tests' mailboxes of the same id leave theirs.)
    assert [name for name in os.listdir(folder) if name.startswith(email.digest)] == [
        os.path.basename(email.raw.path)
    ]
    assert email.raw.read() == PLAIN


def test_a_group_goes_in_one_insert_and_duplicates_within_it_once(make_queue, django_assert_num_queries):
    mailbox = make_queue().mailbox
    moment = datetime(2026, 12, 7, tzinfo=UTC)
    raws = [PLAIN.replace(b"abc@", f"m{n}@".encode()) for n in range(5)] + [PLAIN.replace(b"abc@", b"m0@")]
    prepared = [
        email_prepare(mailbox, raw, message_parse(raw), received_on=moment, size=len(raw)) for raw in raws
    ]

    with django_assert_num_queries(2):  # the INSERT, and what is stored now
        inserted, present = emails_commit(prepared)

    assert len(inserted) == 5 and len(present) == 5
    assert Email.objects.filter(mailbox=mailbox, regarding_queue_id=mailbox.queue_id).count() == 5
    assert not os.path.exists(prepared[-1].raw.path)  # the duplicate's file removed


@pytest.mark.parametrize(
    "header, body, expected",
    [
        (
            b"Content-Type: text/plain; charset=iso-8859-1\r\n",
            "Caf\xe9 cr\xe8me".encode("latin-1"),
            "Café crème",
        ),
        (b"Content-Type: text/plain; charset=windows-1252\r\n", b"5 \x80 \x93quoted\x94", "5 € “quoted”"),
        (b"", "Caf\xe9 \x80".encode("latin-1"), "Café €"),  # 8-bit, no charset declared
        (b"Content-Type: text/plain; charset=x-unknown\r\n", "na\xefve".encode("latin-1"), "naïve"),
        (b"Content-Type: text/plain; charset=utf-8\r\n", "Grüße".encode(), "Grüße"),
    ],
)
def test_the_text_of_a_message_in_a_legacy_charset(header, body, expected):
    from mailboxes.services.emails import message_text

    raw = b"Subject: x\r\n" + header + b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"

    assert message_text(raw).strip() == expected

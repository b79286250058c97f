"""Recording email (SPEC 8): the one write path from a fetched message to an Email row and
its raw message.

- `message_parse(raw)`: what an Email shows of a message (Message-ID, Subject, From, To,
  Cc, Date, attachments) and its digest, tolerant of what real mail contains: RFC 2047
  words, 8-bit headers in a legacy charset (windows-1252, a superset of ISO-8859-1 in
  its printable range), broken MIME. A message it cannot make sense of is `malformed`,
  never refused: it is recorded whole all the same.
- `email_record(mailbox, raw, ...)`: the raw message saved to the "emails" storage, then
  the row inserted; when (mailbox, digest) is already there (a retry, a rescan after
  UIDVALIDITY changed, a crash after the row but before the server learnt of it), the
  message counts as recorded before and the file just saved is removed: nothing is
  recorded twice and no orphan file is left behind.
- `message_text(raw)`: the text of a message to read, in whatever charset it came.
- `recorded_digests(mailbox, digests)`: which of these are recorded already (one query for
  a batch), so that a rescan does not write files only to remove them.
- `processing_alert(mailbox, severity, message)`: an alert on the mailbox (incoming).
"""

import email
import email.errors
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.files.base import ContentFile

from mailboxes.models import Email, Mailbox, MailboxAlert

logger = logging.getLogger(__name__)

# MIME structure defects after which the parts of a message cannot be trusted.
STRUCTURE_DEFECTS = (
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.MissingHeaderBodySeparatorDefect,
)
FALLBACK_CHARSET = "windows-1252"
MAX_FIELD = 998


class _MessagePolicy(email.policy.EmailPolicy):
    """email.policy.default that parses each header of a message once. The standard
    policy parses a header again at every read, into a new object of a new class, and the
    parser and walk() read each part's Content-Type some thirty times a message: two
    thirds of the CPU a message took (bench mail_processing, py-spy). Parsed headers are
    read-only, so reads of one (name, value) can share one. One policy is made for each
    message parsed (`_message_policy`) and emptied once its fields are read: what it
    remembers never outlives the message, nor grows a long-running worker."""

    parsed_headers: dict | None = None  # (name, raw value) -> header object

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):  # a header object set by the program, not parsed
            return value
        key = (name, value)
        header = self.parsed_headers.get(key)
        if header is None:
            header = self.parsed_headers[key] = super().header_fetch_parse(name, value)
        return header


def _message_policy() -> _MessagePolicy:
    return _MessagePolicy(header_factory=email.policy.default.header_factory, parsed_headers={})


@dataclass
class ParsedMessage:
    digest: str
    message_id: str = ""
    subject: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)  # each "Name <address>"
    cc: list[str] = field(default_factory=list)
    sent_on: datetime | None = None
    received_on: datetime | None = None  # from the last Received header (POP3)
    attachments: list[dict] = field(default_factory=list)
    malformed: str = ""  # why it could not be parsed; "" when it could
    message: email.message.EmailMessage | None = field(default=None, repr=False)

    def addresses(self) -> set[str]:
        """The To and Cc addresses, lower-cased."""
        found = set()
        for text in self.to + self.cc:
            _name, address = email.utils.parseaddr(text)
            if "@" in address:
                found.add(address.lower())
        return found


def message_digest(message_id: str, raw: bytes) -> str:
    """SHA-256 of the normalised Message-ID, or of the raw message when it has none."""
    normalised = message_id.strip().strip("<>").strip()
    if normalised:
        return hashlib.sha256(b"message-id:" + normalised.encode("utf-8", "surrogatepass")).hexdigest()
    return hashlib.sha256(raw).hexdigest()


def message_parse(raw: bytes) -> ParsedMessage:
    """Parse `raw` (a whole message, or its headers only)."""
    try:
        policy = _message_policy()
        message = email.message_from_bytes(raw, policy=policy)
        parsed = _fields(message, raw)
        # Parsed headers are large (≈80 KB a message of three parts): not kept with the
        # message, which may be held a while (a group of them, forwarded originals).
        policy.parsed_headers.clear()
    except Exception as exc:  # the parser is tolerant; a decoder may not be
        logger.info("A message could not be parsed: %s", type(exc).__name__)
        return ParsedMessage(digest=message_digest(_raw_message_id(raw), raw), malformed=type(exc).__name__)
    defects = [d for d in message.defects if isinstance(d, STRUCTURE_DEFECTS)]
    if not message.keys():
        parsed.malformed = "it has no headers"
    elif defects:
        parsed.malformed = (
            "its MIME structure is broken (" + ", ".join(type(d).__name__ for d in defects) + ")"
        )
    return parsed


def _fields(message: email.message.EmailMessage, raw: bytes) -> ParsedMessage:
    message_id = _text(message, "message-id", raw)
    parsed = ParsedMessage(
        digest=message_digest(message_id, raw),
        message_id=message_id[:MAX_FIELD],
        subject=_text(message, "subject", raw)[:MAX_FIELD],
        from_address=", ".join(_addresses(message, "from", raw))[:MAX_FIELD],
        to=_addresses(message, "to", raw),
        cc=_addresses(message, "cc", raw),
        sent_on=_date(message.get("date")),
        received_on=_received_on(message),
        message=message,
    )
    parsed.attachments = _attachments(message)
    return parsed


def _text(message, name: str, raw: bytes) -> str:
    """A header as text: RFC 2047 decoded; 8-bit bytes read as UTF-8, else windows-1252."""
    try:
        value = message.get(name)
    except Exception:
        value = None
        text = "\ufffd"
    else:
        if value is None:
            return ""
        text = str(value)
    if _undecoded(text):
        text = _legacy_header(raw, name) or text
    return _safe(" ".join(text.split()))


def _undecoded(text: str) -> bool:
    """Whether the parser left bytes it could not decode (replacement or surrogate characters)."""
    return "\ufffd" in text or any("\udc80" <= ch <= "\udcff" for ch in text)


def _safe(text: str) -> str:
    """Text the database takes: no lone surrogates, no NUL."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _legacy_header(raw: bytes, name: str) -> str:
    """The header `name` read from the raw bytes (a rare path: 8-bit or broken headers):
    unfolded, read as UTF-8 else windows-1252, its RFC 2047 words decoded."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    prefix = name.encode("ascii").lower() + b":"
    value = None
    for line in lines:
        if value is not None:
            if line[:1] in (b" ", b"\t"):
                value += b" " + line.strip()
                continue
            break
        if line.lower().startswith(prefix):
            value = line[len(prefix) :].strip()
    if value is None:
        return ""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode(FALLBACK_CHARSET, "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:  # an encoded word that names no known charset: the text as it is
        return text


def _addresses(message, name: str, raw: bytes) -> list[str]:
    try:
        header = message.get(name)
        if header is None:
            return []
        addresses = [str(a) for group in header.groups for a in group.addresses]
        if addresses and not any(_undecoded(a) for a in addresses):
            return [_safe(a) for a in addresses]
    except Exception as exc:  # an address list the parser could not make sense of
        logger.info("The %s header could not be parsed: %s", name, type(exc).__name__)
    text = _text(message, name, raw)
    return [_safe(_display(name, address)) for name, address in email.utils.getaddresses([text]) if address]


def _display(name: str, address: str) -> str:
    """ "Name <address>" as people read it (formataddr would encode a non-ASCII name)."""
    if not name:
        return address
    if any(ch in name for ch in ',;:<>@"'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _date(header) -> datetime | None:
    try:
        moment = header.datetime if header is not None else None
    except Exception:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _received_on(message) -> datetime | None:
    """When the last server received it: the date after the ";" of the first Received header."""
    try:
        received = message.get("received")
    except Exception:
        return None
    if received is None or ";" not in str(received):
        return None
    try:
        moment = email.utils.parsedate_to_datetime(str(received).rsplit(";", 1)[1].strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _attachments(message) -> list[dict]:
    found = []
    for part in message.walk():
        if part is message or part.is_multipart() and part.get_content_type() != "message/rfc822":
            continue
        filename = part.get_filename()
        if not (filename or part.get_content_disposition() == "attachment"):
            if part.get_content_type() != "message/rfc822":
                continue
        found.append({"name": filename or "", "type": part.get_content_type(), "size": _part_size(part)})
    return found


def _part_size(part) -> int:
    try:
        if part.get_content_type() == "message/rfc822":
            return len(part.get_payload(0).as_bytes())
        return len(part.get_payload(decode=True) or b"")
    except Exception:
        return 0


def _raw_message_id(raw: bytes) -> str:
    try:
        value = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw).get("message-id")
        return str(value or "")
    except Exception:
        return ""


def message_text(raw: bytes) -> str:
    """A message's text body (text/plain, else its HTML as it is); see message_body."""
    return message_body(raw)[0]


def message_body(raw: bytes) -> tuple[str, str]:
    """A message's body for reading (the Email page) and its subtype ("plain" or "html";
    "" when it has none): the text/plain body, else the HTML one, decoded by its declared
    charset; 8-bit text that declares none, or a charset Python does not know, is read as
    UTF-8, else windows-1252."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        if body is None:
            return "", ""
        data = body.get_payload(decode=True) or b""
    except Exception as exc:
        logger.info("A message's text could not be read: %s", type(exc).__name__)
        return "", ""
    subtype = body.get_content_subtype()
    declared = body.get_content_charset()
    for charset in (declared, "utf-8", FALLBACK_CHARSET):
        if not charset:
            continue
        try:
            return _safe(data.decode(charset)), subtype
        except (LookupError, UnicodeDecodeError):
            continue
    return _safe(data.decode(FALLBACK_CHARSET, "replace")), subtype


# Recording ----------------------------------------------------------------------------


def recorded_digests(mailbox_id: int, digests: Iterable[str]) -> set[str]:
    """Which of `digests` the mailbox has recorded already (one query)."""
    wanted = set(digests)
    if not wanted:
        return set()
    return set(
        Email.objects.filter(mailbox_id=mailbox_id, digest__in=wanted).values_list("digest", flat=True)
    )


def recorded_pairs(mailbox_ids: Iterable[int], digests: Iterable[str]) -> set[tuple[int, str]]:
    """Which (mailbox, digest) pairs among these mailboxes and digests are recorded (one
    query: a forward mailbox's group, routed to many mailboxes)."""
    mailbox_ids, digests = set(mailbox_ids), set(digests)
    if not mailbox_ids or not digests:
        return set()
    return set(
        Email.objects.filter(mailbox_id__in=mailbox_ids, digest__in=digests).values_list(
            "mailbox_id", "digest"
        )
    )


def email_prepare(
    mailbox: Mailbox,
    raw: bytes,
    parsed: ParsedMessage,
    *,
    received_on: datetime,
    size: int,
    headers_only: bool = False,
    forward_mailbox: Mailbox | None = None,
) -> Email:
    """`raw` saved to the "emails" storage, and its Email row (of `mailbox`, regarding its
    user or queue) ready for emails_commit(); the row is not inserted yet."""
    record = Email(
        mailbox=mailbox,
        regarding_user_id=mailbox.user_id if mailbox.kind == Mailbox.Kind.USER else None,
        regarding_queue_id=mailbox.queue_id if mailbox.kind == Mailbox.Kind.QUEUE else None,
        forward_mailbox=forward_mailbox,
        digest=parsed.digest,
        message_id=parsed.message_id,
        subject=parsed.subject,
        from_address=parsed.from_address,
        to_addresses=", ".join(parsed.to),
        cc_addresses=", ".join(parsed.cc),
        sent_on=parsed.sent_on,
        received_on=received_on,
        size=size,
        headers_only=headers_only,
        malformed=bool(parsed.malformed),
        attachments=parsed.attachments,
    )
    record.raw.save(f"{parsed.digest}.eml", ContentFile(raw), save=False)
    return record


def emails_commit(records: list[Email]) -> tuple[list[Email], set[tuple[int, str]]]:
    """Insert the rows of prepared Emails (their files saved) in one statement.

    Returns the ones inserted now, and every (mailbox, digest) among them that is recorded
    (now or before). A row the database refused (recorded already: the unique constraint)
    has its file removed again, so no orphan file is left behind; a failure of the
    database removes every file of the group and is raised.
    """
    try:
        Email.objects.bulk_create(records, ignore_conflicts=True)
        stored = dict(
            ((mailbox_id, digest), name)
            for mailbox_id, digest, name in Email.objects.filter(
                mailbox_id__in={r.mailbox_id for r in records}, digest__in={r.digest for r in records}
            ).values_list("mailbox_id", "digest", "raw")
        )
    except BaseException:
        for record in records:
            record.raw.storage.delete(record.raw.name)
        raise
    inserted = []
    for record in records:
        if stored.get((record.mailbox_id, record.digest)) == record.raw.name:
            inserted.append(record)
        else:
            record.raw.storage.delete(record.raw.name)
    return inserted, set(stored)


def email_record(mailbox: Mailbox, raw: bytes, parsed: ParsedMessage, **fields) -> Email | None:
    """Record one message (see email_prepare); None when the mailbox had it already."""
    inserted, _present = emails_commit([email_prepare(mailbox, raw, parsed, **fields)])
    return inserted[0] if inserted else None


def processing_alert(mailbox: Mailbox, severity: str, message: str) -> MailboxAlert:
    return MailboxAlert.objects.create(
        mailbox=mailbox, severity=severity, workload=MailboxAlert.Workload.INCOMING, message=message
    )

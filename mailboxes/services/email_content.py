"""What an email's page shows of its raw message: the text, and the attachments listed.

Read from the "emails" storage when the page is opened. Nothing here renders the mail's
HTML: an HTML-only message is shown as the text of its HTML, which the page escapes.
"""

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser

from mailboxes.models import Email

MISSING_RAW_MESSAGE = (
    "The raw message of this email is missing from the email storage: "
    "its text and attachments cannot be shown or downloaded."
)
HEADERS_ONLY_NOTE = "This message was over the size limit: only its headers were kept."
UNREADABLE_BODY = "The text of this message could not be read."


@dataclass
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass
class EmailContent:
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    # Why the text is not shown (a missing raw message, headers only), for the page.
    note: str = ""


class _HTMLText(HTMLParser):
    """The text of an HTML document: its character data, a line break at each block,
    nothing of <script>, <style>, <head> or <title>."""

    SKIPPED = {"script", "style", "head", "title", "template"}
    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        text = "\n".join(lines)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip()


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _part_text(part: EmailMessage) -> str:
    """A text part decoded: by its charset, else as UTF-8 with the undecodable marked."""
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError, KeyError, ValueError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _is_attachment(part: EmailMessage) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _attachments(message: EmailMessage) -> list[Attachment]:
    """Every attachment of `message`, a forwarded message counted as one (not opened)."""
    found = []
    for part in message.iter_parts():
        if _is_attachment(part):
            if part.get_content_maintype() == "message":
                size = len(part.as_bytes())
            else:
                payload = part.get_payload(decode=True)
                size = len(payload) if isinstance(payload, bytes) else 0
            found.append(Attachment(part.get_filename() or "(no name)", part.get_content_type(), size))
        elif part.is_multipart():
            found.extend(_attachments(part))
    return found


def read_email_content(record: Email) -> EmailContent:
    """The text and the attachments of `record`'s raw message, or a note saying why not."""
    try:
        with record.raw.open("rb") as raw:
            message = email.message_from_binary_file(raw, policy=email.policy.default)
    except (OSError, ValueError):  # missing from the storage (ValueError: no file at all)
        return EmailContent(note=MISSING_RAW_MESSAGE)
    if record.headers_only:
        return EmailContent(note=HEADERS_ONLY_NOTE)
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        if body is None:
            text = ""
        elif body.get_content_subtype() == "html":
            text = html_to_text(_part_text(body))
        else:
            text = _part_text(body)
        attachments = _attachments(message)
    except Exception:  # noqa: BLE001 — a malformed message must still show its headers
        return EmailContent(note=UNREADABLE_BODY)
    return EmailContent(text=text, attachments=attachments)

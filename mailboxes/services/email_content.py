"""What an email's page shows of its raw message: the text, and the attachments listed.

Read from the "emails" storage when the page is opened. Nothing here renders the mail's
HTML: an HTML-only message is shown as the text of its HTML, which the page escapes.
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser

from mailboxes.models import Email
from mailboxes.services.emails import message_body

MISSING_RAW_MESSAGE = (
    "The raw message of this email is missing from the email storage: "
    "its text and attachments cannot be shown or downloaded."
)
HEADERS_ONLY_NOTE = "This message was over the size limit: only its headers were kept."


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


def read_email_content(record: Email) -> EmailContent:
    """The text of `record`'s raw message and its attachments (as mail processing listed
    them when it recorded the message), or a note saying why the text is not shown."""
    attachments = [
        Attachment(item.get("name") or "(no name)", item.get("type", ""), item.get("size", 0))
        for item in record.attachments
    ]
    try:
        with record.raw.open("rb") as raw:
            data = raw.read()
    except (OSError, ValueError):  # missing from the storage (ValueError: no file at all)
        return EmailContent(note=MISSING_RAW_MESSAGE)
    if record.headers_only:
        return EmailContent(note=HEADERS_ONLY_NOTE)
    text, subtype = message_body(data)
    return EmailContent(text=html_to_text(text) if subtype == "html" else text, attachments=attachments)

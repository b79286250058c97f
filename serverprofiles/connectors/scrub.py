"""Server replies are quoted in messages; these helpers make sure no credential comes along."""

import base64

from mailboxadmin.logging import redact
from serverprofiles.connectors.sasl import sasl_oauthbearer, sasl_xoauth2

MAX_QUOTE = 300
REDACTED = "[redacted]"


def _forms_of(secret: str, username: str) -> set[str]:
    """The ways a secret can travel on the wire: as typed, IMAP-quoted, or in SASL base64
    (PLAIN for a password; XOAUTH2 and OAUTHBEARER for an access token)."""
    forms = {secret, secret.replace("\\", "\\\\").replace('"', '\\"')}
    sasl = (
        secret,
        f"\0{username}\0{secret}",
        f"{username}\0{username}\0{secret}",
        sasl_xoauth2(username, secret),
        sasl_oauthbearer(username, secret),
    )
    for raw in sasl:
        forms.add(base64.b64encode(raw.encode()).decode())
    return {form for form in forms if form}


def scrub(text: str, *, secrets=(), username: str = "") -> str:
    """`text` without any of `secrets` (in any wire form) or anything that looks like one."""
    for secret in secrets:
        for form in sorted(_forms_of(secret, username), key=len, reverse=True):
            text = text.replace(form, REDACTED)
    return redact(text)


def quote_reply(reply, *, secrets=(), username: str = "") -> str:
    """A server's reply fit to show: decoded, printable, scrubbed and short."""
    if isinstance(reply, (list, tuple)):
        reply = b" ".join(r if isinstance(r, bytes) else str(r).encode() for r in reply if r is not None)
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(str(reply).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    text = scrub(text, secrets=secrets, username=username)
    if len(text) > MAX_QUOTE:
        text = text[: MAX_QUOTE - 1] + "…"
    return text

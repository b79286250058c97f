"""What the connectors answer to a server's SASL challenges (RFC 4422), for every library.

imaplib (under IMAPClient's `sasl_login`) and smtplib (`SMTP.auth`) call an
"authobject" once for each challenge and send what it returns; POP3 does the same
through `pop3.POP3Client.authenticate`. `Responses` is that object: it returns its
answers in turn, then None, which the IMAP and POP3 clients send as "*" (cancel).

Every answer is text sent as UTF-8 (RFC 4616): the user names and passwords the tests
pin are not all ASCII.
"""

import hmac
from collections.abc import Callable

# An answer: a fixed string, or a function of the server's challenge.
Answer = str | Callable[[bytes], str]


class Responses:
    """Answers the server's challenges with `answers`, one each, then with None (cancel)."""

    def __init__(self, *answers: Answer):
        self._answers = list(answers)

    def __call__(self, challenge: bytes | None = None) -> str | None:
        if not self._answers:
            return None
        answer = self._answers.pop(0)
        return answer(challenge or b"") if callable(answer) else answer


def sasl_plain(username: str, password: str) -> str:
    return f"\0{username}\0{password}"


def cram_md5(username: str, password: str) -> Callable[[bytes], str]:
    """RFC 2195: the user name and the HMAC-MD5 of the challenge, keyed with the password."""
    return lambda challenge: f"{username} {hmac.new(password.encode(), challenge, 'md5').hexdigest()}"


def sasl_xoauth2(username: str, token: str) -> str:
    """Google's and Microsoft's XOAUTH2 initial response."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def sasl_oauthbearer(username: str, token: str) -> str:
    """RFC 7628's OAUTHBEARER initial response (with RFC 5801's escaping of the user)."""
    authzid = username.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01auth=Bearer {token}\x01\x01"


# After a refused token the server sends an error challenge (a JSON status) and waits:
# the client ends the exchange with this, and then hears the refusal itself.
OAUTH_ERROR_ANSWER = {"XOAUTH2": "", "OAUTHBEARER": "\x01"}
OAUTH_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")  # in this order of preference


def oauth_mechanism(offered) -> str | None:
    """OAUTHBEARER where the server offers it, else XOAUTH2; None if it offers neither."""
    return next((mechanism for mechanism in OAUTH_MECHANISMS if mechanism in offered), None)


def oauth_responses(mechanism: str, username: str, token: str) -> Responses:
    initial = (
        sasl_oauthbearer(username, token) if mechanism == "OAUTHBEARER" else sasl_xoauth2(username, token)
    )
    return Responses(initial, OAUTH_ERROR_ANSWER[mechanism])

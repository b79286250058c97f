"""aiosmtpd taking XOAUTH2/OAUTHBEARER tokens, for the OAuth Test & Enable benchmark: the
suite's handler (tests/fixtures/mailservers.py), in a process of its own (as
bench/smtp_server.py), each token checked with the token server's /check over HTTP.

    python -m bench.oauth_smtp_server CHECK_URL

Prints its port, then serves until standard input closes.
"""

import json
import logging
import sys
import urllib.parse
import urllib.request

from tests.fixtures.mailservers import (
    LOOPBACK,
    MAIL_PASSWORD,
    MAIL_USERNAME,
    _AcceptTokens,
    _authenticator,
    free_port,
)
from tests.fixtures.smtp_server import SMTPController


class _TokenCheck:
    """What _AcceptTokens asks of the token server, asked over HTTP."""

    def __init__(self, check_url: str):
        self.check_url = check_url

    def token_allows(self, token: str, user: str) -> bool:
        form = urllib.parse.urlencode({"token": token, "user": user}).encode()
        with urllib.request.urlopen(self.check_url, form, timeout=5) as answer:  # noqa: S310 (loopback)
            return json.load(answer).get("active") is True


def main() -> int:
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    for _attempt in range(3):
        port = free_port()
        controller = SMTPController(
            _AcceptTokens(_TokenCheck(sys.argv[1])),
            hostname=LOOPBACK,
            port=port,
            server_hostname="localhost",
            authenticator=_authenticator((MAIL_USERNAME, MAIL_PASSWORD)),
            auth_require_tls=False,
        )
        try:
            controller.start()
        except OSError:
            continue
        break
    else:
        print("aiosmtpd could not bind a free port after three attempts.", file=sys.stderr)
        return 1
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

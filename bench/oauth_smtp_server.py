"""aiosmtpd taking XOAUTH2/OAUTHBEARER tokens, for the OAuth Test & Enable benchmark: the
suite's handler (tests/fixtures/mailservers.py), in a process of its own (as
bench/smtp_server.py), each token checked with the token server's /check over HTTP.

    python -m bench.oauth_smtp_server CHECK_URL

Prints its port, then serves until standard input closes.
"""

import json
import sys
import urllib.parse
import urllib.request

from bench.smtp_server import serve
from tests.fixtures.mailservers import _AcceptTokens


class _TokenCheck:
    """What _AcceptTokens asks of the token server, asked over HTTP."""

    def __init__(self, check_url: str):
        self.check_url = check_url

    def token_allows(self, token: str, user: str) -> bool:
        form = urllib.parse.urlencode({"token": token, "user": user}).encode()
        with urllib.request.urlopen(self.check_url, form, timeout=5) as answer:  # noqa: S310 (loopback)
            return json.load(answer).get("active") is True


def main() -> int:
    return serve(_AcceptTokens(_TokenCheck(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())

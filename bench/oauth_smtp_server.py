"""aiosmtpd taking XOAUTH2/OAUTHBEARER tokens, for the OAuth Test & Enable benchmark: the
suite's handler (tests/fixtures/mailservers.py), in a process of its own (as
bench/smtp_server.py), each token checked against the password file the bench's token
server writes when it issues one (bench/oauth.py).

    python -m bench.oauth_smtp_server TOKENS_FILE

Prints its port, then serves until standard input closes.
"""

import os
import sys

from bench.smtp_server import serve
from tests.fixtures.mailservers import _AcceptTokens


class _TokenFile:
    """What _AcceptTokens asks of the token server, read from its file (lines
    `user:{PLAIN}token::::::`, read again when it changes)."""

    def __init__(self, path: str):
        self.path = path
        self._read_at = None
        self._tokens: dict[str, str] = {}

    def token_allows(self, token: str, user: str) -> bool:
        changed = os.stat(self.path).st_mtime_ns
        if changed != self._read_at:
            with open(self.path, encoding="utf-8") as lines:
                self._tokens = dict(line.split(":{PLAIN}", 1) for line in lines.read().splitlines() if line)
            self._tokens = {name: rest.split(":", 1)[0] for name, rest in self._tokens.items()}
            self._read_at = changed
        return self._tokens.get(user.lower()) == token


def main() -> int:
    return serve(_AcceptTokens(_TokenFile(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())

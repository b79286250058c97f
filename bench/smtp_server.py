"""aiosmtpd for the Test & Enable benchmark, in a process of its own so that its event
loop does not compete with the testing client for one interpreter lock.

The same server as the suite's (tests/fixtures/mailservers.py and smtp_server.py): AUTH
in plain text for the test account, no mail accepted. Prints its port, then serves until
standard input closes.
"""

import logging
import sys

from tests.fixtures.mailservers import (
    LOOPBACK,
    MAIL_PASSWORD,
    MAIL_USERNAME,
    _AcceptNothing,
    _authenticator,
    free_port,
)
from tests.fixtures.smtp_server import SMTPController


def serve(handler) -> int:
    """Run aiosmtpd with `handler` on a free loopback port: print the port, then serve
    until standard input closes."""
    # aiosmtpd 1.4 logs a warning on every AUTH that Session.login_data is deprecated
    # (its own use of it); a thousand of those say nothing.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    for _attempt in range(3):
        port = free_port()
        controller = SMTPController(
            handler,
            hostname=LOOPBACK,
            port=port,
            server_hostname="localhost",
            authenticator=_authenticator((MAIL_USERNAME, MAIL_PASSWORD)),
            auth_require_tls=False,
        )
        try:
            controller.start()
        except OSError:  # the port was taken meanwhile
            continue
        break
    else:
        print("aiosmtpd could not bind a free port after three attempts.", file=sys.stderr)
        return 1
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()
    return 0


def main() -> int:
    return serve(_AcceptNothing())


if __name__ == "__main__":
    sys.exit(main())

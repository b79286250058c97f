"""Dovecot and aiosmtpd for the Test & Enable benchmark: the suite's own set-up
(tests/fixtures/mailservers.py), started outside pytest."""

import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures import mailservers as fixtures

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class MailServers:
    imap_host: str
    imap_port: int
    smtp_host: str
    smtp_port: int
    username: str = fixtures.MAIL_USERNAME
    password: str = fixtures.MAIL_PASSWORD


@contextmanager
def mail_servers(python: str = sys.executable):
    """Dovecot (IMAP in plain text on its no-STARTTLS address) and aiosmtpd (AUTH in
    plain text, its own process), both on loopback; stopped on exit."""
    with _dovecot() as dovecot, _smtp_server(python) as smtp_port:
        yield MailServers(
            imap_host=dovecot.plain_host,
            imap_port=dovecot.imap_port,
            smtp_host=fixtures.LOOPBACK,
            smtp_port=smtp_port,
        )


@contextmanager
def _dovecot():
    if not Path(shutil.which("dovecot") or "/usr/sbin/dovecot").exists():
        raise RuntimeError("Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d")
    with tempfile.TemporaryDirectory(prefix="mailboxadmin-bench-certificates-") as folder:
        cert, key = fixtures._self_signed(Path(folder), "server", "localhost")
        other_cert, other_key = fixtures._self_signed(Path(folder), "other", "localhost")
        certificates = fixtures.TestCertificates(cert, key, other_cert, other_key)
        with fixtures.running_dovecot(certificates, prefix="mailboxadmin-bench-dovecot-") as dovecot:
            yield dovecot


@contextmanager
def _smtp_server(python: str):
    """aiosmtpd in its own process (bench.smtp_server); yields its port."""
    smtp = subprocess.Popen(  # noqa: S603 (this Python, our module)
        [python, "-m", "bench.smtp_server"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = smtp.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError("aiosmtpd did not start (see its output above).")
        port = int(line)
        fixtures.wait_for_greeting(fixtures.LOOPBACK, port)
        yield port
    finally:
        smtp.stdin.close()
        try:
            smtp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            smtp.kill()
            smtp.wait()

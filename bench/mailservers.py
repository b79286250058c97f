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
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise RuntimeError("Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d")
    directory = Path(tempfile.mkdtemp(prefix="mailboxadmin-bench-dovecot-"))
    directory.chmod(0o755)
    smtp = None
    try:
        cert, key = fixtures._self_signed(directory, "server", "localhost")
        other_cert, other_key = fixtures._self_signed(directory, "other", "localhost")
        certificates = fixtures.TestCertificates(cert, key, other_cert, other_key)
        for _attempt in range(3):
            dovecot = fixtures._start_dovecot(binary, directory, certificates)
            if dovecot is not None:
                break
        else:
            raise RuntimeError("Dovecot could not bind free ports after three attempts.")
        smtp = subprocess.Popen(  # noqa: S603 (this Python, our module)
            [python, "-m", "bench.smtp_server"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = smtp.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError("aiosmtpd did not start (see its output above).")
        smtp_port = int(line)
        fixtures.wait_for_greeting(fixtures.LOOPBACK, smtp_port)
        yield MailServers(
            imap_host=dovecot.plain_host,
            imap_port=dovecot.imap_port,
            smtp_host=fixtures.LOOPBACK,
            smtp_port=smtp_port,
        )
    finally:
        if smtp is not None:
            smtp.stdin.close()
            try:
                smtp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                smtp.kill()
                smtp.wait()
        fixtures._stop_dovecot(directory)
        shutil.rmtree(directory, ignore_errors=True)

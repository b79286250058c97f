"""The OAuth Test & Enable benchmark (issue 15): 1,000 mailboxes of one OAuth 2.0 profile
against the suite's token server, its OAuth Dovecot and an OAuth aiosmtpd, with exactly
one token request (counted by the token server)."""

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.measure import busy_share, cpu_times, ms, say
from bench.report import Row
from mailboxes.models import ApprovalStatus, Mailbox
from serverprofiles.models import EmailServerProfile

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 2.5  # seconds, as for password logins


@contextmanager
def oauth_mail_servers(python: str = sys.executable):
    """(token server, Dovecot, SMTP port): the token server in this process, Dovecot
    checking tokens with it (checkpassword), aiosmtpd in its own process."""
    from tests.fixtures import mailservers as fixtures
    from tests.fixtures.oauth_server import OAuthServer

    token_server = OAuthServer()
    try:
        with tempfile.TemporaryDirectory(prefix="mailboxadmin-bench-oauth-certificates-") as folder:
            cert, key = fixtures._self_signed(Path(folder), "server", "localhost")
            other_cert, other_key = fixtures._self_signed(Path(folder), "other", "localhost")
            certificates = fixtures.TestCertificates(cert, key, other_cert, other_key)
            with (
                fixtures.running_dovecot(
                    certificates,
                    prefix="mailboxadmin-bench-oauth-dovecot-",
                    oauth_check_url=f"{token_server.url}/check",
                ) as dovecot,
                _smtp_server(python, f"{token_server.url}/check") as smtp_port,
            ):
                yield token_server, dovecot, smtp_port
    finally:
        token_server.close()


@contextmanager
def _smtp_server(python: str, check_url: str):
    from tests.fixtures import mailservers as fixtures

    smtp = subprocess.Popen(  # noqa: S603 (this Python, our module)
        [python, "-m", "bench.oauth_smtp_server", check_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = smtp.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError("aiosmtpd (OAuth) did not start (see its output above).")
        fixtures.wait_for_greeting(fixtures.LOOPBACK, int(line))
        yield int(line)
    finally:
        smtp.stdin.close()
        try:
            smtp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            smtp.kill()
            smtp.wait()


def test_and_enable_oauth() -> list[Row]:
    from mailboxes.services.testing import run_mailbox_tests
    from serverprofiles import oauth
    from serverprofiles.models import AuthenticationMethod, ServerType
    from serverprofiles.services import profile_create

    count, cap = 1000, 10
    say(f"Test & Enable with OAuth 2.0: {count:,} mailboxes of one profile, max_connections={cap}")
    with oauth_mail_servers(sys.executable) as (token_server, dovecot, smtp_port):
        profile = EmailServerProfile(
            name="Bench Test & Enable OAuth",
            server_type=ServerType.IMAP_SMTP,
            incoming_server=dovecot.plain_host,
            incoming_port=dovecot.imap_port,
            incoming_ssl=False,
            outgoing_server=dovecot.host,
            outgoing_port=smtp_port,
            outgoing_ssl=False,
            max_connections=cap,
            timeout_ms=10_000,
            allow_unencrypted_credentials=True,  # the bench's servers speak plain text
            incoming_auth=AuthenticationMethod.OAUTH2,
            oauth_provider="other",
            oauth_token_url=token_server.token_url,
            oauth_client_id=token_server.client_id,
            oauth_scope="https://outlook.office365.com/.default",
        )
        profile.set_oauth_client_secret(token_server.client_secret)
        profile = profile_create(profile)
        ids = list(
            Mailbox.objects.filter(kind="user", state="active")
            .order_by("pk")
            .values_list("pk", flat=True)[:count]
        )
        # Each mailbox logs in as its own address with the profile's app-only token.
        Mailbox.objects.filter(pk__in=ids).update(
            server_profile=profile,
            allow_credentials=False,
            username="",
            password_ciphertext="",
            incoming_method="server-side-sync",
            outgoing_method="server-side-sync",
            act_method="none",
            approval_status=ApprovalStatus.APPROVED,
        )
        oauth.cache_clear()
        token_server.requests.clear()
        started, cpu_before, process_before = time.perf_counter(), cpu_times(), time.process_time()
        results = run_mailbox_tests(ids)
        total = time.perf_counter() - started
        busy, client_cpu = busy_share(cpu_before, cpu_times()), time.process_time() - process_before
        token_requests = token_server.requests["/token"]
        checks = token_server.requests["/check"]
    failed = [r for r in results if r.failed or not r.tested]
    if len(results) != count or failed:
        raise RuntimeError(f"OAuth Test & Enable: {len(failed)} of {len(results)} failed: {failed[0].causes}")
    cores = os.cpu_count() or 1
    machine_cpu = busy * cores * total
    return [
        Row(
            f"Test & Enable {count:,} mailboxes of one OAuth profile (cap {cap}) ≤ {BUDGET:g} s, "
            "one token request",
            f"{total:.2f} s; {token_requests} token request(s); {ms(client_cpu / count)} CPU per mailbox "
            "(testing process)",
            total <= BUDGET and token_requests == 1,
            f"XOAUTH2/OAUTHBEARER over IMAP (IMAPClient) and SMTP (smtplib), the token from the suite's "
            f"token server (client credentials), cached for the run. The test servers check each token with "
            f"the token server ({checks} checks; Dovecot through a checkpassword program, one process per "
            f"login, which is the test server's cost, not the client's). During the {count:,}: the {cores} "
            f"CPU cores were {busy:.0%} busy: {machine_cpu:.2f} s of CPU ({ms(machine_cpu / count)} per "
            f"mailbox); the testing process used {client_cpu:.2f} s of it.",
        )
    ]

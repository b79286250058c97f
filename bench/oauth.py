"""The OAuth Test & Enable benchmark (issue 15): 1,000 mailboxes of one OAuth 2.0 profile
against the suite's token server, Dovecot and an OAuth aiosmtpd, with exactly one token
request (counted by the token server).

The servers check each login's token cheaply, so that the bench measures the product and
not the test servers: when the token server issues the run's token it writes it, as each
mailbox's password, into a password file that Dovecot's passwd-file passdb (Dovecot 2.3
hands an XOAUTH2/OAUTHBEARER token to the passdb as the password) and the bench's
aiosmtpd read. (The suite's Dovecot asks the token server through a checkpassword
program instead, one Python process per login: about 75 ms of CPU a mailbox.)"""

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.measure import median_run, ms, say, timed
from bench.report import Row
from bench.scenarios import THOUSAND_RUNS, WARMUP, check_results
from mailboxes.models import ApprovalStatus, Mailbox
from serverprofiles.models import EmailServerProfile

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 2.5  # seconds, as for password logins


def _token_server(tokens_file: Path):
    """The suite's token server, writing each app-only token it issues into `tokens_file`
    as the password of every mailbox in its `mailboxes` (the app's permission). Each
    mailbox opens the one INBOX at `mail` (Dovecot would otherwise create a thousand
    mail folders at their first logins: the test server's cost, not the product's)."""
    from tests.fixtures.oauth_server import OAuthServer

    class TokensToFile(OAuthServer):
        mailboxes: list[str] = []
        mail: str = ""

        def issue_token(self, username=None, **kwargs) -> str:
            token = super().issue_token(username, **kwargs)
            users = self.mailboxes if username is None else [username]
            written = tokens_file.with_suffix(".new")
            extra = f"userdb_mail=sdbox:{self.mail}" if self.mail else ""
            written.write_text("".join(f"{user.lower()}:{{PLAIN}}{token}::::::{extra}\n" for user in users))
            written.chmod(0o644)
            written.replace(tokens_file)  # whole or not at all, for the servers reading it
            return token

    return TokensToFile()


@contextmanager
def oauth_mail_servers(python: str = sys.executable):
    """(token server, Dovecot, SMTP port): the token server in this process, Dovecot and
    aiosmtpd (in its own process) checking tokens against the file it writes."""
    from tests.fixtures import mailservers as fixtures

    with tempfile.TemporaryDirectory(prefix="mailboxadmin-bench-oauth-") as folder:
        Path(folder).chmod(0o755)
        tokens_file = Path(folder) / "tokens"
        tokens_file.write_text("")
        tokens_file.chmod(0o644)
        token_server = _token_server(tokens_file)
        try:
            cert, key = fixtures._self_signed(Path(folder), "server", "localhost")
            other_cert, other_key = fixtures._self_signed(Path(folder), "other", "localhost")
            certificates = fixtures.TestCertificates(cert, key, other_cert, other_key)
            with (
                fixtures.running_dovecot(
                    certificates,
                    prefix="mailboxadmin-bench-oauth-dovecot-",
                    oauth_tokens_file=str(tokens_file),
                ) as dovecot,
                _smtp_server(python, str(tokens_file)) as smtp_port,
            ):
                yield token_server, dovecot, smtp_port
        finally:
            token_server.close()


@contextmanager
def _smtp_server(python: str, tokens_file: str):
    from tests.fixtures import mailservers as fixtures

    smtp = subprocess.Popen(  # noqa: S603 (this Python, our module)
        [python, "-m", "bench.oauth_smtp_server", tokens_file],
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
            name=f"Bench Test & Enable OAuth {os.getpid()}",  # a kept cluster keeps earlier runs' profiles
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
            .values_list("pk", flat=True)[: count + 1]
        )
        # Each mailbox logs in as its own address with the profile's app-only token.
        token_server.mail = str(dovecot.directory / "mail" / dovecot.username)
        token_server.mailboxes = list(Mailbox.objects.filter(pk__in=ids).values_list("email", flat=True))
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
        # Warm up as the password bench does (Dovecot's login, auth and mail processes, the
        # connections to PostgreSQL) with one mailbox outside the thousand.
        single, ids = ids[0], ids[1:]
        for _ in range(WARMUP):
            check_results(run_mailbox_tests([single]))
        thousands, token_requests = [], []
        for _ in range(THOUSAND_RUNS):
            # Each run starts without a token, and asks for one.
            oauth.cache_clear()
            token_server.requests.clear()
            # Dovecot looks at the token file again at most once a second: let a second
            # pass, so that its first login of the run reads the token the run asks for.
            time.sleep(1.5)
            run, results = timed(lambda: run_mailbox_tests(ids))
            check_results(results, expected=count)
            thousands.append(run)
            token_requests.append(token_server.requests["/token"])
    median = median_run(thousands)
    cores = os.cpu_count() or 1
    return [
        Row(
            f"Test & Enable {count:,} mailboxes of one OAuth profile (cap {cap}) ≤ {BUDGET:g} s, "
            "one token request",
            f"{median.wall:.2f} s; {max(token_requests)} token request(s); "
            f"{ms(median.process_cpu / count)} CPU per mailbox (testing process)",
            median.wall <= BUDGET and set(token_requests) == {1},
            f"p50 of {len(thousands)} runs ({', '.join(f'{run.wall:.2f}' for run in thousands)} s), each "
            f"asking for its token ({', '.join(map(str, token_requests))} requests). XOAUTH2/OAUTHBEARER "
            f"over IMAP (IMAPClient) and SMTP (smtplib), the token from the suite's token server (client "
            f"credentials), cached for the run. The test servers check each token against a password file "
            f"the token server wrote when it issued the token (Dovecot's passwd-file passdb), so that they "
            f"cost about what a password login does. During the median run: the {cores} CPU cores were "
            f"{median.busy:.0%} busy: {median.machine_cpu:.2f} s of CPU ({ms(median.machine_cpu / count)} "
            f"per mailbox); the testing process used {median.process_cpu:.2f} s of it.",
        )
    ]

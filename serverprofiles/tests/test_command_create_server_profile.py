import json

import pytest
from django.core.management.base import CommandError

from mailboxes.models import OrganizationSettings
from serverprofiles.models import EmailServerProfile
from serverprofiles.tests.test_oauth_rules import other_key_pem

IMAP = [
    "--server-type",
    "imap-smtp",
    "--incoming-server",
    "imap.contoso.test",
    "--outgoing-server",
    "smtp.contoso.test",
]
SECRET = "Pr0file-Secret!"


def test_creates_an_imap_profile_with_ports_from_ssl(run, org):
    result = run("create_server_profile", "--name", "Contoso IMAP", *IMAP)

    profile = EmailServerProfile.objects.get(name="Contoso IMAP")
    assert (profile.incoming_port, profile.outgoing_port) == (993, 465)
    assert profile.incoming_ssl
    assert profile.outgoing_ssl
    assert profile.incoming_auth == profile.outgoing_auth == "user-credentials"
    assert not profile.is_default
    assert result.lines == [
        'Created email server profile "Contoso IMAP" (IMAP/SMTP; incoming imap.contoso.test:993, '
        "outgoing smtp.contoso.test:465; authenticate using Credentials Specified by a User or Queue)."
    ]


def test_no_ssl_ports_and_max_connections(run, org):
    run(
        "create_server_profile",
        "--name",
        "Plain POP",
        "--server-type",
        "pop3-smtp",
        "--incoming-server",
        "pop.contoso.test",
        "--outgoing-server",
        "smtp.contoso.test",
        "--no-ssl",
        "--outgoing-port",
        "2525",
        "--max-connections",
        "3",
    )

    profile = EmailServerProfile.objects.get(name="Plain POP")
    assert (profile.incoming_port, profile.outgoing_port) == (110, 2525)
    assert not profile.incoming_ssl
    assert not profile.outgoing_ssl
    assert profile.max_connections == 3


def test_default_makes_it_the_default_for_new_mailboxes(run, org, make_profile):
    make_profile(name="Old default")
    OrganizationSettings.objects.update(default_server_profile=EmailServerProfile.objects.get())

    result = run("create_server_profile", "--name", "New default", *IMAP, "--default")

    assert OrganizationSettings.load().default_server_profile.name == "New default"
    assert result.stdout.rstrip().endswith("the default for new mailboxes.")


@pytest.mark.parametrize("source", ["stdin", "env"])
def test_profile_credentials_from_stdin_or_environment(run, org, monkeypatch, source):
    if source == "stdin":
        args, stdin = ["--password-stdin"], SECRET + "\n"
    else:
        monkeypatch.setenv("PROFILE_PASSWORD", SECRET)
        args, stdin = ["--password-env", "PROFILE_PASSWORD"], None

    result = run(
        "create_server_profile",
        "--name",
        "Shared",
        *IMAP,
        "--auth",
        "profile-credentials",
        "--username",
        "mailer@contoso.test",
        *args,
        stdin=stdin,
    )

    profile = EmailServerProfile.objects.get(name="Shared")
    assert profile.incoming_credentials() == ("mailer@contoso.test", SECRET)
    assert SECRET not in profile.incoming_password_ciphertext
    assert SECRET not in result.output


def test_exchange_online_with_server_to_server(run, org, monkeypatch):
    # SPEC 7: Exchange Online is IMAP and SMTP with the app's OAuth token, at Microsoft's
    # servers unless given others.
    monkeypatch.setenv("CLIENT_SECRET", SECRET)
    result = run(
        "create_server_profile",
        "--name",
        "Exchange Online",
        "--server-type",
        "exchange-online",
        "--auth",
        "server-to-server",
        "--oauth-tenant-id",
        "contoso.onmicrosoft.com",
        "--oauth-client-id",
        "app-id",
        "--client-secret-env",
        "CLIENT_SECRET",
    )

    profile = EmailServerProfile.objects.get(name="Exchange Online")
    assert profile.outgoing_auth == "server-to-server"
    assert (profile.incoming_server, profile.incoming_port) == ("outlook.office365.com", 993)
    assert (profile.outgoing_server, profile.outgoing_port, profile.outgoing_ssl) == (
        "smtp.office365.com",
        587,
        False,
    )
    assert profile.get_bound_oauth_secret().secret == SECRET
    assert SECRET not in result.output


def test_oauth2_profile_with_client_secret_from_stdin(run, org):
    result = run(
        "create_server_profile",
        "--name",
        "Modern IMAP",
        "--server-type",
        "imap-smtp",
        "--incoming-server",
        "imap.contoso.test",
        "--outgoing-server",
        "smtp.contoso.test",
        "--auth",
        "oauth2",
        "--oauth-provider",
        "other",
        "--oauth-token-url",
        "https://login.contoso.test/token",
        "--oauth-client-id",
        "app-id",
        "--oauth-scope",
        "mail",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )

    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    assert (profile.incoming_auth, profile.oauth_provider, profile.oauth_client_id) == (
        "oauth2",
        "other",
        "app-id",
    )
    assert profile.get_bound_oauth_secret().secret == SECRET
    assert SECRET not in result.output and SECRET not in profile.oauth_client_secret_ciphertext


def test_oauth2_profile_without_client_secret_names_the_flag(run, org, unchanged_database):
    with unchanged_database(), pytest.raises(CommandError, match="--client-secret-stdin/--client-secret-env"):
        run(
            "create_server_profile",
            "--name",
            "Modern IMAP",
            "--server-type",
            "imap-smtp",
            "--incoming-server",
            "imap.contoso.test",
            "--outgoing-server",
            "smtp.contoso.test",
            "--auth",
            "oauth2",
            "--oauth-provider",
            "microsoft",
            "--oauth-tenant-id",
            "contoso.com",
            "--oauth-client-id",
            "app-id",
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--name", "Contoso IMAP", *IMAP],
            r'^email server profile "Contoso IMAP": --name: Email server profile '
            r"with this Name already exists\.$",
        ),
        (
            ["--name", "No servers", "--server-type", "imap-smtp"],
            r'^email server profile "No servers": --incoming-server: Incoming Server Location is required.*'
            r"--outgoing-server: Outgoing Server Location is required",
        ),
        (
            ["--name", "Bad host", *IMAP[:3], "imap.contoso.test/path", *IMAP[4:]],
            r"--incoming-server: Incoming Server Location must be a host name",
        ),
        (
            ["--name", "Bad port", *IMAP, "--incoming-port", "70000"],
            r"--incoming-port: Ensure this value is less than or equal to 65535\.",
        ),
        (
            ["--name", "Too many", *IMAP, "--max-connections", "301"],
            r"--max-connections: Ensure this value is less than or equal to 300\.",
        ),
        (
            ["--name", "Windows", *IMAP, "--auth", "windows"],
            r'--auth: "Windows Integrated Authentication" is valid only for Exchange server types\.',
        ),
        (
            ["--name", "Anonymous", *IMAP, "--auth", "anonymous"],
            r'--auth: "Without Credentials \(Anonymous\)" is not valid for incoming connections\.',
        ),
        (
            ["--name", "Online", "--server-type", "exchange-online", "--incoming-server", "https://a.test/"],
            r'--auth: Exchange Online \(Hybrid\) accepts only "Server to Server Authentication"\.',
        ),
        (
            ["--name", "No password", *IMAP, "--auth", "profile-credentials", "--username", "mailer"],
            r"--password-stdin/--password-env: Enter the password this profile authenticates with\.",
        ),
        (
            ["--name", "No user name", *IMAP, "--auth", "profile-credentials", "--password-env", "PW"],
            r"--username: Enter the user name this profile authenticates with\.",
        ),
        (
            ["--name", "Stray user", *IMAP, "--username", "mailer"],
            r'^email server profile "Stray user": --username and a password are the profile\'s own '
            r"credentials; they need --auth profile-credentials\.$",
        ),
        (
            [
                "--name",
                "Bad token URL",
                *IMAP,
                "--auth",
                "oauth2",
                "--oauth-provider",
                "other",
                "--oauth-token-url",
                "https://[login.contoso.test/token",
                "--oauth-client-id",
                "app-id",
                "--oauth-scope",
                "mail",
                "--client-secret-env",
                "PW",
            ],
            r'^email server profile "Bad token URL": --oauth-token-url: Token URL must be an https URL',
        ),
        (
            ["--name", "Empty env", *IMAP, "--auth", "profile-credentials", "--password-env", "UNSET_VAR"],
            r'^email server profile "Empty env": --password-env: the environment '
            r"variable UNSET_VAR is not set",
        ),
    ],
)
def test_errors_name_the_profile_and_the_flag_and_write_nothing(
    run, make_profile, unchanged_database, monkeypatch, args, message
):
    make_profile(name="Contoso IMAP")
    monkeypatch.setenv("PW", SECRET)
    monkeypatch.delenv("UNSET_VAR", raising=False)

    with unchanged_database(), pytest.raises(CommandError, match=message) as raised:
        run("create_server_profile", *args)

    assert "\n" not in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_service_account_key_that_is_not_rsa_is_refused_in_one_line(
    run, org, unchanged_database, monkeypatch
):
    key = {"client_email": "svc@p.iam.gserviceaccount.com", "private_key": other_key_pem("ed25519")}
    monkeypatch.setenv("KEY_JSON", json.dumps(key))
    google = ["--server-type", "imap-smtp", "--incoming-server", "imap.gmail.com"]
    google += ["--outgoing-server", "smtp.gmail.com", "--auth", "oauth2", "--oauth-provider", "google"]
    google += ["--oauth-client-id", "123"]

    with unchanged_database(), pytest.raises(CommandError) as raised:
        run("create_server_profile", "--name", "Google", *google, "--client-secret-env", "KEY_JSON")

    assert str(raised.value) == (
        'email server profile "Google": --client-secret-stdin/--client-secret-env: Service Account Key '
        "holds no RSA private key in its private_key."
    )


def test_empty_standard_input_is_refused(run, org, unchanged_database):
    with unchanged_database(), pytest.raises(CommandError, match="standard input gave no password"):
        run(
            "create_server_profile",
            "--name",
            "Shared",
            *IMAP,
            "--auth",
            "profile-credentials",
            "--username",
            "u",
            "--password-stdin",
            stdin="",
        )


def test_an_actor_without_permission_is_refused(run, readonly, unchanged_database):
    with (
        unchanged_database(),
        pytest.raises(CommandError, match=r"^--actor: reader may not make this change"),
    ):
        run("create_server_profile", "--name", "X", *IMAP, "--actor", "reader")


def test_the_actor_is_recorded_in_history(run, sysadmin):
    from django.contrib.admin.models import LogEntry

    run("create_server_profile", "--name", "Logged", *IMAP, "--actor", "sysadmin")

    entry = LogEntry.objects.get(object_repr="Logged")
    assert entry.user == sysadmin
    assert "create_server_profile" in entry.change_message

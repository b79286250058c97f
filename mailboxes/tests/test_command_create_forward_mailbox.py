import pytest
from django.core.management.base import CommandError

from mailboxes.models import Mailbox

SECRET = "Fwd-Secret-42!"


@pytest.fixture
def imap(make_profile):
    return make_profile(name="Contoso IMAP")


def test_creates_a_forward_mailbox_on_the_profile(run, imap):
    result = run(
        "create_forward_mailbox",
        "--name",
        "Forward box",
        "--email",
        "fwd@contoso.test",
        "--profile",
        "Contoso IMAP",
    )

    mailbox = Mailbox.objects.get(email="fwd@contoso.test")
    assert mailbox.is_forward
    assert mailbox.regarding is None
    assert mailbox.server_profile == imap
    assert (mailbox.incoming_method, mailbox.outgoing_method, mailbox.act_method) == (
        "server-side-sync",
        "none",
        "none",
    )
    assert mailbox.approval_status == "empty"
    assert not mailbox.delete_after_processing
    assert not mailbox.allow_credentials
    assert result.lines == [
        'Created forward mailbox "Forward box" <fwd@contoso.test> on email server profile "Contoso IMAP".'
    ]


def test_credentials_and_delete_after_processing(run, imap):
    result = run(
        "create_forward_mailbox",
        "--name",
        "Forward box",
        "--email",
        "fwd@contoso.test",
        "--profile",
        "Contoso IMAP",
        "--delete-after-processing",
        "--username",
        "fwd-user",
        "--password-stdin",
        stdin=SECRET + "\n",
    )

    mailbox = Mailbox.objects.get(email="fwd@contoso.test")
    assert mailbox.delete_after_processing
    assert mailbox.allow_credentials
    assert mailbox.username == "fwd-user"
    assert mailbox.get_password() == SECRET
    assert SECRET not in result.output
    assert result.stdout.rstrip().endswith("its own credentials, user name fwd-user.")


def test_the_actor_owns_it(run, imap, sysadmin):
    run(
        "create_forward_mailbox",
        *("--name", "F", "--email", "f@contoso.test", "--profile", "Contoso IMAP", "--actor", "sysadmin"),
    )

    assert Mailbox.objects.get(email="f@contoso.test").owner == sysadmin


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--profile", "Nowhere"],
            r"^forward mailbox fwd@contoso.test: --profile: there is no email "
            r'server profile named "Nowhere"\.$',
        ),
        (
            ["--email", "alice@contoso.test"],
            r"^forward mailbox alice@contoso.test: --email: Another mailbox already "
            r"uses this email address\.$",
        ),
        (["--email", "ALICE@contoso.test"], r"--email: Another mailbox already uses this email address\."),
        (
            ["--email", "not-an-address"],
            r"^forward mailbox not-an-address: --email: Enter a valid email address",
        ),
        (["--name", ""], r"^forward mailbox fwd@contoso.test: --name: This field cannot be blank\.$"),
        (
            ["--username", "fwd-user"],
            r"^forward mailbox fwd@contoso.test: --password-stdin/--password-env: Enter the password",
        ),
        (["--password-env", "FWD_PW"], r"^forward mailbox fwd@contoso.test: --username: Enter the user name"),
        (
            ["--profile", "Shared", "--username", "fwd-user", "--password-env", "FWD_PW"],
            r"^forward mailbox fwd@contoso.test: --username: Allow to Use "
            r"Credentials for Email Processing can be "
            r'Yes only when the server profile uses "Credentials Specified by a User or Queue"\.$',
        ),
        (
            ["--username", "fwd-user", "--password-env", "MISSING_PW"],
            r"^forward mailbox fwd@contoso.test: --password-env: the environment "
            r"variable MISSING_PW is not set",
        ),
    ],
)
def test_errors_name_the_mailbox_and_the_flag_and_write_nothing(
    run, imap, make_profile, make_user, unchanged_database, monkeypatch, args, message
):
    make_profile(
        name="Shared", incoming_auth="profile-credentials", incoming_username="shared", password="x-Shared-9"
    )
    make_user("alice", email="alice@contoso.test")
    monkeypatch.setenv("FWD_PW", SECRET)
    monkeypatch.delenv("MISSING_PW", raising=False)
    options = {"--name": "Forward box", "--email": "fwd@contoso.test", "--profile": "Contoso IMAP"}
    extra = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in options:
            options[flag] = value
        else:
            extra += [flag, value]

    with unchanged_database(), pytest.raises(CommandError, match=message) as raised:
        run("create_forward_mailbox", *[part for pair in options.items() for part in pair], *extra)

    assert "\n" not in str(raised.value)
    assert SECRET not in str(raised.value)

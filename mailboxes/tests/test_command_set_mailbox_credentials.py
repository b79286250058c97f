import pytest
from django.core.management.base import CommandError

from mailboxes.models import Mailbox

SECRET = "Alice-Secret-77!"


@pytest.fixture
def alice(make_user, profile, org):
    org.default_server_profile = profile
    org.save()
    return make_user("alice", email="alice@contoso.test").mailbox


def test_sets_credentials_on_a_user_mailbox(run, alice):
    alice.incoming_status = "success"
    alice.save()

    result = run(
        "set_mailbox_credentials",
        "Alice@Contoso.test",
        "--username",
        "alice",
        "--password-stdin",
        stdin=SECRET + "\n",
    )

    alice.refresh_from_db()
    assert alice.allow_credentials
    assert alice.username == "alice"
    assert alice.get_password() == SECRET
    assert alice.incoming_status == "not-run"  # M13: new credentials, new test
    assert result.lines == ["Set the credentials of mailbox alice@contoso.test (user name alice)."]
    assert SECRET not in result.output


def test_sets_credentials_on_queue_and_forward_mailboxes(
    run, alice, make_queue, make_forward_mailbox, monkeypatch
):
    monkeypatch.setenv("BOX_PASSWORD", SECRET)
    queue = make_queue(email="support@contoso.test")
    forward = make_forward_mailbox(email="fwd@contoso.test")

    for address in ("support@contoso.test", "fwd@contoso.test"):
        run("set_mailbox_credentials", address, "--username", "box", "--password-env", "BOX_PASSWORD")

    for mailbox in (queue.mailbox, forward):
        mailbox.refresh_from_db()
        assert mailbox.allow_credentials
        assert mailbox.get_password() == SECRET


def test_the_same_credentials_again_change_nothing(run, alice, monkeypatch, unchanged_database):
    monkeypatch.setenv("ALICE_PASSWORD", SECRET)
    run(
        "set_mailbox_credentials",
        "alice@contoso.test",
        "--username",
        "alice",
        "--password-env",
        "ALICE_PASSWORD",
    )

    with unchanged_database():
        result = run(
            "set_mailbox_credentials",
            "alice@contoso.test",
            "--username",
            "alice",
            "--password-env",
            "ALICE_PASSWORD",
        )

    assert result.lines == ["Mailbox alice@contoso.test already has these credentials; nothing changed."]


def test_a_new_password_is_a_change(run, alice, monkeypatch):
    monkeypatch.setenv("ALICE_PASSWORD", SECRET)
    run(
        "set_mailbox_credentials",
        "alice@contoso.test",
        "--username",
        "alice",
        "--password-env",
        "ALICE_PASSWORD",
    )
    monkeypatch.setenv("ALICE_PASSWORD", "Another-Secret-1")

    run(
        "set_mailbox_credentials",
        "alice@contoso.test",
        "--username",
        "alice",
        "--password-env",
        "ALICE_PASSWORD",
    )

    assert Mailbox.objects.get(email="alice@contoso.test").get_password() == "Another-Secret-1"


@pytest.mark.parametrize(
    ("address", "args", "message"),
    [
        (
            "nobody@contoso.test",
            ["--password-env", "ALICE_PASSWORD"],
            r"^mailbox nobody@contoso.test: there is no mailbox with this address\.$",
        ),
        (
            "alice@contoso.test",
            [],
            r"^mailbox alice@contoso.test: A password is required: give "
            r"--password-stdin or --password-env VAR\.$",
        ),
        (
            "alice@contoso.test",
            ["--password-env", "MISSING_PW"],
            r"^mailbox alice@contoso.test: --password-env: the environment variable MISSING_PW is not set",
        ),
        (  # a password typed where the variable's name goes is not repeated
            "alice@contoso.test",
            ["--password-env", "Typed-Pa55word!"],
            r"^mailbox alice@contoso.test: --password-env: the environment variable named \(its name is "
            r"not repeated: it is not written as one, and may be a secret typed in its place\) is not set",
        ),
        (
            "shared@contoso.test",
            ["--password-env", "ALICE_PASSWORD"],
            r"^mailbox shared@contoso.test: allow_credentials: Allow to Use "
            r"Credentials for Email Processing can be Yes "
            r'only when the server profile uses "Credentials Specified by a User or Queue"\.$',
        ),
    ],
)
def test_errors_name_the_mailbox_and_write_nothing(
    run, alice, make_user, make_profile, unchanged_database, monkeypatch, address, args, message
):
    shared = make_profile(
        name="Shared", incoming_auth="profile-credentials", incoming_username="shared", password="x-Shared-9"
    )
    other = make_user("other", email="shared@contoso.test").mailbox
    other.server_profile = shared
    other.save()
    monkeypatch.setenv("ALICE_PASSWORD", SECRET)
    monkeypatch.delenv("MISSING_PW", raising=False)

    with unchanged_database(), pytest.raises(CommandError, match=message) as raised:
        run("set_mailbox_credentials", address, "--username", "alice", *args)

    assert SECRET not in str(raised.value)


def test_a_password_of_bytes_that_are_not_utf8_is_refused(run, alice, unchanged_database, monkeypatch):
    # What Python makes of an environment variable (or a terminal) holding Latin-1 bytes.
    monkeypatch.setenv("LATIN1_PW", "caf\udce9-Secret")

    with unchanged_database(), pytest.raises(CommandError) as raised:
        run(
            "set_mailbox_credentials",
            "alice@contoso.test",
            "--username",
            "alice",
            "--password-env",
            "LATIN1_PW",
        )

    assert str(raised.value) == (
        "mailbox alice@contoso.test: --password-stdin/--password-env: The password holds bytes that are not "
        "UTF-8 text. "
        "Give it as UTF-8 text."
    )


def test_username_is_required(run, alice):
    with pytest.raises(CommandError, match="the following arguments are required: --username"):
        run("set_mailbox_credentials", "alice@contoso.test", "--password-env", "X")

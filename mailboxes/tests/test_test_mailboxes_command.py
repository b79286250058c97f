"""`manage.py test_mailboxes`: runs Test & Enable now, one line per mailbox, exit 1 on failure."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mailboxes.management.commands.test_mailboxes import Command
from mailboxes.models import Mailbox
from mailboxes.services.mailboxes import mailbox_set_state
from tests.fixtures.mailservers import MAIL_PASSWORD

pytestmark = pytest.mark.servers


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("test_mailboxes", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_one_line_per_mailbox_and_exits_0_when_all_pass(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    profile = make_test_server_profile()
    first, second = make_test_mailbox(profile), make_test_mailbox(profile)

    out, _ = run(second.email, first.email)

    assert out.splitlines() == sorted(
        f"{m.email}\tincoming=Success\toutgoing=Success\tact=Not Run\t-" for m in (first, second)
    )
    assert Mailbox.objects.get(pk=first.pk).enabled_incoming


def test_a_failure_is_printed_with_its_cause_and_exits_1(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    profile = make_test_server_profile()
    good = make_test_mailbox(profile)
    bad = make_test_mailbox(profile, password="Wrong-Pass-Cmd-1")
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("test_mailboxes", "--profile", profile.name, stdout=out)

    assert raised.value.returncode == 1
    assert str(raised.value) == "1 of 2 mailboxes failed the test."
    lines = dict(line.split("\t", 1) for line in out.getvalue().splitlines())
    assert lines[good.email].startswith("incoming=Success\toutgoing=Success")
    assert lines[bad.email].startswith(
        "incoming=Failure\toutgoing=Failure\tact=Not Run\tAuthentication failed:"
    )
    assert "Wrong-Pass-Cmd-1" not in out.getvalue()
    assert MAIL_PASSWORD not in out.getvalue()


def test_profile_tests_only_its_active_mailboxes(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    profile = make_test_server_profile()
    active = make_test_mailbox(profile)
    inactive = make_test_mailbox(profile)
    mailbox_set_state(mailbox=inactive, active=False)
    make_test_mailbox(make_test_server_profile())

    out, _ = run("--profile", profile.name)

    assert [line.split("\t")[0] for line in out.splitlines()] == [active.email]


def test_a_named_inactive_mailbox_is_reported_as_not_tested(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox_set_state(mailbox=mailbox, active=False)

    out, _ = run(mailbox.email)

    assert (
        out.strip()
        == f"{mailbox.email}\tincoming=-\toutgoing=-\tact=-\tNot tested: the mailbox is inactive, "
        + ("and inactive mailboxes are neither tested nor processed.")
    )


def test_an_unapproved_mailbox_prints_the_approval_cause(
    make_test_server_profile, make_test_mailbox, org, sysadmin
):
    mailbox = make_test_mailbox(make_test_server_profile())

    with pytest.raises(CommandError):
        call_command("test_mailboxes", "--all", stdout=(out := StringIO()))

    line = next(line for line in out.getvalue().splitlines() if line.startswith(mailbox.email))
    assert "\tThe email address requires approval. " in line


def test_an_unknown_address_is_a_one_line_error_and_nothing_is_tested(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    mailbox = make_test_mailbox(make_test_server_profile())

    with pytest.raises(CommandError, match=r"^There is no mailbox with the address nobody@example\.test\.$"):
        run(mailbox.email, "nobody@example.test")

    assert Mailbox.objects.get(pk=mailbox.pk).test_completed_on is None


def test_an_unknown_profile_is_a_one_line_error(db, sysadmin):
    with pytest.raises(CommandError, match='^--profile: there is no server profile named "Nope".$'):
        run("--profile", "Nope")


def test_nothing_to_select_is_an_error(db):
    with pytest.raises(CommandError, match="Name at least one ADDRESS"):
        run()


def test_an_actor_without_the_test_permission_is_refused(
    make_test_server_profile, make_test_mailbox, readonly
):
    mailbox = make_test_mailbox(make_test_server_profile())

    with pytest.raises(CommandError, match="lacks the permission"):
        run(mailbox.email, "--actor", readonly.username)


def test_help_documents_the_command_with_an_example():
    help_text = Command().create_parser("manage.py", "test_mailboxes").format_help()

    assert "Example: manage.py test_mailboxes alice@contoso.test" in " ".join(help_text.split())
    for option in ("ADDRESS", "--profile NAME", "--all", "--actor"):
        assert option in help_text

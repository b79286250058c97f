import io
import json
import sys

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management.base import CommandError

from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from serverprofiles.models import EmailServerProfile
from tests.fixtures.commands import SPEC_EXAMPLE

FWD_SECRET = "Fwd-Env-Secret-1!"


@pytest.fixture
def apply(run, tmp_path, monkeypatch):
    """Write `data` to a file and run apply_config on it."""
    monkeypatch.setenv("FWD_PASSWORD", FWD_SECRET)

    def apply_file(data, *args, **options):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        result = run("apply_config", str(path), *args, **options)
        result.path = str(path)
        return result

    return apply_file


def test_creates_the_spec_example(apply, db):
    result = apply(SPEC_EXAMPLE)

    profile = EmailServerProfile.objects.get(name="Contoso IMAP")
    assert OrganizationSettings.load().default_server_profile == profile
    alice = User.objects.get(username="alice")
    assert (alice.full_name, alice.email, alice.is_active) == ("Alice Example", "alice@contoso.test", True)
    assert not alice.has_usable_password()
    assert Queue.objects.get(name="Support").owner == alice
    forward = Mailbox.objects.get(email="fwd@contoso.test")
    assert forward.is_forward
    assert forward.delete_after_processing
    assert forward.username == "fwd@contoso.test"
    assert forward.get_password() == FWD_SECRET
    mailbox = alice.mailbox
    assert (mailbox.incoming_method, mailbox.outgoing_method) == ("forward-mailbox", "server-side-sync")
    assert mailbox.approval_status == "approved"
    assert Mailbox.objects.get(email="support@contoso.test").approval_status == "pending"
    assert result.lines == [
        "create    server_profiles[0] (Contoso IMAP)",
        "update    settings: default_server_profile",
        "create    users[0] (alice)",
        "create    queues[0] (Support)",
        "create    mailboxes[0] (fwd@contoso.test)",
        "update    mailboxes[1] (alice@contoso.test): incoming, approval",
        f"Applied {result.path}: created 4, updated 2, unchanged 0.",
    ]
    assert FWD_SECRET not in result.output


def test_a_second_run_changes_nothing(apply, db, unchanged_database):
    apply(SPEC_EXAMPLE)

    with unchanged_database():  # versions, history and ciphertexts included
        result = apply(SPEC_EXAMPLE)

    assert result.lines == [f"Applied {result.path}: created 0, updated 0, unchanged 6."]


def test_the_time_zone_and_disabling_after_failures_are_settings_too(apply, db, run):
    settings = {"time_zone": "Europe/Paris", "disable_after_failures": 3}

    result = apply({"settings": settings})

    assert result.lines[0] == "update    settings: time_zone, disable_after_failures"
    stored = OrganizationSettings.load()
    assert (stored.time_zone, stored.disable_after_failures) == ("Europe/Paris", 3)
    exported = json.loads(run("export_config").stdout)["settings"]
    assert exported.items() >= settings.items()
    assert apply({"settings": settings}).lines[-1].endswith("created 0, updated 0, unchanged 1.")


def test_dry_run_prints_the_plan_and_writes_nothing(apply, db, unchanged_database):
    apply({"server_profiles": SPEC_EXAMPLE["server_profiles"], "users": SPEC_EXAMPLE["users"]})
    changed = json.loads(json.dumps(SPEC_EXAMPLE))
    changed["users"][0]["full_name"] = "Alice Changed"
    changed["users"][0]["active"] = False
    changed["mailboxes"][1]["active"] = False

    with unchanged_database():
        result = apply(changed, "--dry-run")

    assert result.lines == [
        "unchanged server_profiles[0] (Contoso IMAP)",
        "update    settings: default_server_profile",
        "update    users[0] (alice): full_name, active",
        "create    queues[0] (Support)",
        "create    mailboxes[0] (fwd@contoso.test)",
        # alice was created before the file made a default profile; deactivating her deactivated it
        "update    mailboxes[1] (alice@contoso.test): server_profile, incoming, approval",
        f"Dry run of {result.path}: would create 2, update 3 and leave 1 unchanged; nothing was written.",
    ]


def test_verbosity_2_lists_unchanged_records_too(apply, db):
    apply(SPEC_EXAMPLE)

    result = apply(SPEC_EXAMPLE, verbosity=2)

    assert len(result.lines) == 7
    assert result.lines[1] == "unchanged settings"


def test_what_the_file_leaves_out_is_left_as_it_is(apply, db):
    apply(SPEC_EXAMPLE)
    before = Mailbox.objects.get(email="fwd@contoso.test")

    result = apply({"mailboxes": [{"email": "fwd@contoso.test", "forward": True, "name": "Renamed"}]})

    after = Mailbox.objects.get(email="fwd@contoso.test")
    assert after.name == "Renamed"
    assert after.version == before.version + 1
    for field in (
        "delete_after_processing",
        "username",
        "password_ciphertext",
        "server_profile_id",
        "owner_id",
    ):
        assert getattr(after, field) == getattr(before, field)
    assert result.lines[0] == "update    mailboxes[0] (fwd@contoso.test): name"


def test_one_invalid_record_among_many_writes_nothing(apply, db, unchanged_database):
    apply({"server_profiles": SPEC_EXAMPLE["server_profiles"]})
    users = [{"username": f"user{n:03}", "email": f"user{n:03}@contoso.test"} for n in range(120)]
    users[87]["email"] = "user087-at-contoso.test"

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply({**SPEC_EXAMPLE, "users": SPEC_EXAMPLE["users"] + users})

    assert str(raised.value) == "users[88] (user087): email: Enter a valid email address."


def test_an_error_in_the_last_record_undoes_the_earlier_sections(apply, db, unchanged_database):
    data = json.loads(json.dumps(SPEC_EXAMPLE))
    data["mailboxes"][1]["delete_after_processing"] = True

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(data)

    assert str(raised.value) == (
        "mailboxes[1] (alice@contoso.test): delete_after_processing: The Delete Emails after "
        "Processing option cannot be set to Yes for user mailboxes."
    )


def with_changes(section, index, **changes):
    data = json.loads(json.dumps(SPEC_EXAMPLE))
    if index is None:
        data[section].update(changes)
    else:
        data[section][index].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"user": []},
            "Unknown section 'user'; accepted: settings, server_profiles, users, queues, mailboxes.",
        ),
        (
            [],
            "The file must hold one JSON object with the keys settings, server_profiles, "
            "users, queues, mailboxes.",
        ),
        ({"users": {}}, "users: must be a JSON list."),
        ({"users": ["alice"]}, "users[0]: must be a JSON object."),
        ({"users": [{"email": "a@contoso.test"}]}, "users[0]: username: is required (a non-empty string)."),
        (
            with_changes("users", 0, mail="x"),
            "users[0] (alice): unknown key 'mail'; accepted: active, email, full_name, username.",
        ),
        (
            with_changes("mailboxes", 0, password="plain"),
            "mailboxes[0] (fwd@contoso.test): password: a password is never written in a file; give "
            '"password_env": "VAR" and put it in the environment variable VAR.',
        ),
        (
            with_changes("mailboxes", 0, password_env="NOT_SET_ANYWHERE"),
            "mailboxes[0] (fwd@contoso.test): password_env: the environment variable NOT_SET_ANYWHERE "
            "is not set or is empty.",
        ),
        (
            with_changes("mailboxes", 0, password_env="EMPTY_VAR"),
            "mailboxes[0] (fwd@contoso.test): password_env: the environment variable "
            "EMPTY_VAR is not set or is empty.",
        ),
        (  # a password written where the variable's name goes is not repeated
            with_changes("mailboxes", 0, password_env="Typed-Pa55word!"),
            "mailboxes[0] (fwd@contoso.test): password_env: the environment variable named (its name "
            "is not repeated: it is not written as one, and may be a secret typed in its place) is not "
            "set or is empty.",
        ),
        (
            {"users": [{"username": "a", "email": "a@contoso.test"}, {"username": "a"}]},
            "users[1] (a): username: also given at users[0]; each record appears once.",
        ),
        (
            {"mailboxes": [{"email": "X@contoso.test"}, {"email": "x@contoso.test"}]},
            "mailboxes[1] (x@contoso.test): email: also given at mailboxes[0]; each record appears once.",
        ),
        (
            with_changes("server_profiles", 0, server_type="imap"),
            "server_profiles[0] (Contoso IMAP): server_type: must be one of exchange | exchange-hybrid | "
            "exchange-online | pop3-smtp | imap-smtp.",
        ),
        (
            with_changes("server_profiles", 0, incoming_port="993"),
            "server_profiles[0] (Contoso IMAP): incoming_port: must be a whole number.",
        ),
        (
            with_changes("server_profiles", 0, timeout_ms=100000),
            "server_profiles[0] (Contoso IMAP): timeout_ms: Connection timeout (ms) is at most 60000 (one "
            "minute): a mail server that has not answered within a minute is not going to.",
        ),
        (
            with_changes("server_profiles", 0, incoming_ssl="yes"),
            "server_profiles[0] (Contoso IMAP): incoming_ssl: must be true or false.",
        ),
        (
            with_changes("server_profiles", 0, incoming_port=0),
            "server_profiles[0] (Contoso IMAP): incoming_port: Ensure this value is greater "
            "than or equal to 1.",
        ),
        (
            with_changes("server_profiles", 0, process_email_from="yesterday"),
            "server_profiles[0] (Contoso IMAP): process_email_from: must be a date and time in ISO 8601 "
            "form, e.g. 2025-01-31T00:00:00+00:00.",
        ),
        (
            # Past datetime's range once in UTC: a traceback before the year range.
            with_changes("server_profiles", 0, process_email_from="9999-12-31T23:59:59-01:00"),
            "server_profiles[0] (Contoso IMAP): process_email_from: Enter a date between the years 2 "
            "and 9998.",
        ),
        (
            with_changes("mailboxes", 0, process_email_after="0001-01-01T00:00:00+01:00"),
            "mailboxes[0] (fwd@contoso.test): process_email_after: Enter a date between the years 2 "
            "and 9998.",
        ),
        (
            with_changes("server_profiles", 0, incoming_auth="profile-credentials", username="svc"),
            "server_profiles[0] (Contoso IMAP): password_env: Enter the password this "
            "profile authenticates with.",
        ),
        (
            with_changes("settings", None, default_server_profile="Nowhere"),
            'settings: default_server_profile: there is no email server profile named "Nowhere".',
        ),
        (
            with_changes("settings", None, incoming="pigeon"),
            "settings: incoming: must be one of none | outlook | server-side-sync | forward-mailbox.",
        ),
        (
            with_changes("settings", None, time_zone="Mars/Olympus"),
            "settings: time_zone: “Mars/Olympus” is not a time zone name: use an IANA name such as "
            "Europe/Paris or UTC.",
        ),
        (
            with_changes("settings", None, disable_after_failures=0),
            "settings: disable_after_failures: Ensure this value is greater than or equal to 1.",
        ),
        (
            with_changes("queues", 0, owner="zed"),
            'queues[0] (Support): owner: there is no user named "zed".',
        ),
        (
            with_changes("queues", 0, email="alice@contoso.test"),
            "queues[0] (Support): email: Another mailbox already uses this email address.",
        ),
        (
            with_changes("mailboxes", 1, owner="alice"),
            "mailboxes[1] (alice@contoso.test): owner: only a forward mailbox's owner is set here; a user's "
            "mailbox belongs to its user, and a queue's follows the queue's owner.",
        ),
        (
            with_changes("mailboxes", 0, approval="approved"),
            "mailboxes[0] (fwd@contoso.test): approval: approval does not apply to forward mailboxes.",
        ),
        (
            {**SPEC_EXAMPLE, "mailboxes": [{"email": "alice@contoso.test", "forward": True}]},
            "mailboxes[0] (alice@contoso.test): forward: this is the mailbox of user Alice Example; a "
            "mailbox's kind is fixed when it is created.",
        ),
        (
            with_changes("mailboxes", 0, email="nobody@contoso.test", forward=False),
            "mailboxes[0] (nobody@contoso.test): email: no user or queue has this address; to create a "
            'forward mailbox, add "forward": true.',
        ),
        (
            with_changes("mailboxes", 0, outgoing="server-side-sync"),
            "mailboxes[0] (fwd@contoso.test): outgoing: A forward mailbox's Outgoing Email must be None.",
        ),
        (
            with_changes("mailboxes", 0, server_profile=None, allow_credentials=False),
            "mailboxes[0] (fwd@contoso.test): server_profile: A forward mailbox must have a server profile.",
        ),
        (
            with_changes("mailboxes", 1, incoming="outlook", act="server-side-sync"),
            "mailboxes[1] (alice@contoso.test): act: Appointments, Contacts, and Tasks cannot use "
            "Server-Side Synchronization with a POP3/SMTP or IMAP/SMTP server profile: those servers "
            "carry no calendars or contacts.",
        ),
        (
            with_changes("mailboxes", 1, allow_credentials=True, username="alice"),
            "mailboxes[1] (alice@contoso.test): password_env: Enter the password, or set Allow to Use "
            "Credentials to No.",
        ),
        (
            # Found by the apply_config fuzz test on PostgreSQL, which refused the lookup.
            with_changes("mailboxes", 0, owner="\x00" * 3),
            "mailboxes[0] (fwd@contoso.test): owner: must not contain a NUL character.",
        ),
        (
            with_changes("mailboxes", 0, password_env=None),
            "mailboxes[0] (fwd@contoso.test): password_env: must name an environment variable.",
        ),
        (
            with_changes("mailboxes", 1, password_set=True),
            "mailboxes[1] (alice@contoso.test): password_set: the file says a password is set, but none "
            'is stored here; give it with "password_env".',
        ),
        (
            with_changes("mailboxes", 1, active=True)
            | {"users": [SPEC_EXAMPLE["users"][0] | {"active": False}]},
            "mailboxes[1] (alice@contoso.test): active: The mailbox cannot be active while "
            "its user is inactive.",
        ),
    ],
)
def test_errors_name_the_record_and_the_field_and_write_nothing(
    apply, db, unchanged_database, monkeypatch, data, message
):
    monkeypatch.setenv("EMPTY_VAR", "")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(data)

    assert str(raised.value) == message
    assert FWD_SECRET not in str(raised.value)


def test_m7_needs_a_profile_that_takes_user_credentials(apply, db, unchanged_database):
    data = json.loads(json.dumps(SPEC_EXAMPLE))
    data["server_profiles"].append(
        {
            "name": "Shared",
            "server_type": "imap-smtp",
            "incoming_server": "imap.contoso.test",
            "outgoing_server": "smtp.contoso.test",
            "incoming_auth": "profile-credentials",
            "username": "svc",
            "password_env": "FWD_PASSWORD",
        }
    )
    data["mailboxes"][0]["server_profile"] = "Shared"

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(data)

    assert str(raised.value).startswith(
        "mailboxes[0] (fwd@contoso.test): allow_credentials: Allow to Use Credentials for Email "
        'Processing can be Yes only when the server profile uses "Credentials Specified by a User or Queue".'
    )


def test_an_unreadable_file_is_one_line(run, db, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"users": [', encoding="utf-8")
    doubled = tmp_path / "doubled.json"
    doubled.write_text('{"users": [], "users": []}', encoding="utf-8")

    with pytest.raises(
        CommandError, match=r"broken.json: not valid JSON: Expecting value at line 1, column 12\.$"
    ):
        run("apply_config", str(broken))
    with pytest.raises(CommandError, match=r"doubled.json: the key 'users' appears twice in one object\.$"):
        run("apply_config", str(doubled))
    with pytest.raises(CommandError, match=r"missing.json: cannot read it: No such file or directory\.$"):
        run("apply_config", str(tmp_path / "missing.json"))


def test_a_key_twice_among_thirty_thousand_is_named(run, db, tmp_path):
    # The check once counted every key's occurrences (quadratic: 12 s for this object).
    keys = [f"key{number}" for number in range(30_000)]
    distinct = tmp_path / "distinct.json"
    distinct.write_text(json.dumps({"users": [dict.fromkeys(keys, 1)]}), encoding="utf-8")
    doubled = tmp_path / "doubled.json"
    doubled.write_text(
        "{" + ", ".join(f'"{key}": 1' for key in keys) + ', "key29999": 2, "key7": 3}', encoding="utf-8"
    )

    with pytest.raises(CommandError, match=r"doubled.json: the key 'key29999' appears twice"):
        run("apply_config", str(doubled))
    with pytest.raises(CommandError) as raised:
        run("apply_config", str(distinct))
    assert str(raised.value) == "users[0]: username: is required (a non-empty string)."


def test_reads_standard_input(run, db, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"users": SPEC_EXAMPLE["users"]})))

    result = run("apply_config", "-")

    assert result.lines[-1] == "Applied -: created 1, updated 0, unchanged 0."
    assert User.objects.filter(username="alice").exists()


def test_a_password_is_compared_not_rewritten(apply, db, monkeypatch):
    apply(SPEC_EXAMPLE)
    stored = Mailbox.objects.get(email="fwd@contoso.test").password_ciphertext

    unchanged = apply(SPEC_EXAMPLE)
    monkeypatch.setenv("FWD_PASSWORD", "A-New-Secret-2!")
    changed = apply(SPEC_EXAMPLE)

    mailbox = Mailbox.objects.get(email="fwd@contoso.test")
    assert unchanged.lines == [f"Applied {unchanged.path}: created 0, updated 0, unchanged 6."]
    assert changed.lines[0] == "update    mailboxes[0] (fwd@contoso.test): password"
    assert mailbox.password_ciphertext != stored
    assert mailbox.get_password() == "A-New-Secret-2!"
    assert "A-New-Secret-2!" not in changed.output


def test_profile_credentials_from_the_environment(apply, db, monkeypatch):
    monkeypatch.setenv("SHARED_PASSWORD", "Shared-Secret-3!")
    monkeypatch.setenv("SHARED_OUT_PASSWORD", "Shared-Out-Secret-4!")
    profile = {
        "name": "Shared",
        "server_type": "pop3-smtp",
        "incoming_server": "pop.contoso.test",
        "outgoing_server": "smtp.contoso.test",
        "incoming_auth": "profile-credentials",
        "username": "svc-in",
        "password_env": "SHARED_PASSWORD",
        "use_same_settings_for_outgoing": False,
        "outgoing_auth": "profile-credentials",
        "outgoing_username": "svc-out",
        "outgoing_password_env": "SHARED_OUT_PASSWORD",
    }

    apply({"server_profiles": [profile]})
    again = apply({"server_profiles": [profile]})

    shared = EmailServerProfile.objects.get(name="Shared")
    assert shared.incoming_credentials() == ("svc-in", "Shared-Secret-3!")
    assert shared.outgoing_credentials() == ("svc-out", "Shared-Out-Secret-4!")
    assert (shared.incoming_port, shared.outgoing_port) == (995, 465)
    assert again.lines == [f"Applied {again.path}: created 0, updated 0, unchanged 1."]


@pytest.mark.parametrize("status", ["approved", "rejected", "pending", "empty"])
def test_sets_any_email_address_status(apply, db, status):
    apply(SPEC_EXAMPLE)
    data = with_changes("mailboxes", 1, approval=status)

    apply(data)
    second = apply(data)

    assert Mailbox.objects.get(email="alice@contoso.test").approval_status == status
    assert second.lines == [f"Applied {second.path}: created 0, updated 0, unchanged 6."]


def test_deactivating_a_mailbox(apply, db):
    apply(SPEC_EXAMPLE)
    Mailbox.objects.filter(email="alice@contoso.test").update(enabled_incoming=True)

    result = apply({"mailboxes": [{"email": "alice@contoso.test", "active": False}]})

    mailbox = Mailbox.objects.get(email="alice@contoso.test")
    assert mailbox.state == "inactive"
    assert not mailbox.enabled_incoming
    assert User.objects.get(username="alice").is_active  # only the mailbox
    assert result.lines[0] == "update    mailboxes[0] (alice@contoso.test): active"


def test_a_profile_owner_may_be_created_by_the_same_file(apply, db):
    data = with_changes("server_profiles", 0, owner="alice")

    result = apply(data)
    again = apply(data)

    assert EmailServerProfile.objects.get(name="Contoso IMAP").owner.username == "alice"
    assert result.lines[0] == "create    server_profiles[0] (Contoso IMAP)"
    assert again.lines == [f"Applied {again.path}: created 0, updated 0, unchanged 6."]


def test_a_new_address_for_a_user_moves_the_mailbox(apply, db):
    apply(SPEC_EXAMPLE)
    data = json.loads(json.dumps(SPEC_EXAMPLE))
    data["users"][0]["email"] = "alice.example@contoso.test"
    data["mailboxes"][1]["email"] = "alice.example@contoso.test"

    result = apply(data)

    mailbox = User.objects.get(username="alice").mailbox
    assert mailbox.email == "alice.example@contoso.test"  # M12
    assert mailbox.approval_status == "approved"  # reset by M13, approved again by the file
    assert result.lines[:2] == [
        "update    users[0] (alice): email",
        "update    mailboxes[1] (alice.example@contoso.test): approval",
    ]


def test_a_forward_mailbox_owner_may_be_nobody(apply, db, sysadmin):
    data = with_changes("mailboxes", 0, owner=None)

    apply(data, actor="sysadmin")
    again = apply(data, actor="sysadmin")

    assert Mailbox.objects.get(email="fwd@contoso.test").owner is None
    assert again.lines[-1].endswith("created 0, updated 0, unchanged 6.")


def test_a_forward_mailbox_owner_defaults_to_the_actor(apply, db, sysadmin):
    apply(SPEC_EXAMPLE, actor="sysadmin")

    assert Mailbox.objects.get(email="fwd@contoso.test").owner == sysadmin


def test_changes_are_recorded_in_history_under_the_actor(apply, db, sysadmin):
    apply(SPEC_EXAMPLE, actor="sysadmin")

    messages = list(LogEntry.objects.filter(user=sysadmin).values_list("change_message", flat=True))
    assert "Added (via apply_config)." in messages
    assert "Email address approved." in messages
    assert all(FWD_SECRET not in m for m in messages)


def test_two_queues_with_one_name_are_ambiguous(apply, make_queue, unchanged_database):
    make_queue("Support")
    make_queue("Support")

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply({"queues": [{"name": "Support", "description": "x"}]})

    assert str(raised.value) == (
        "queues[0] (Support): name: 2 queues are named 'Support'; rename all but one before applying "
        "a file that names them."
    )


def test_the_actor_needs_the_permissions_the_file_uses(apply, manager, unchanged_database):
    apply({"users": SPEC_EXAMPLE["users"]}, actor="manager")  # a Mailbox Manager may add users

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(SPEC_EXAMPLE, actor="manager")

    assert str(raised.value) == (
        "--actor: manager may not make this change (needs mailboxes.change_organizationsettings, "
        "mailboxes.approve_email)."
    )


def test_progress_is_not_written_when_standard_error_is_not_a_terminal(apply, db):
    result = apply(SPEC_EXAMPLE)

    assert result.stderr == ""

"""apply_config saves new users and changed mailboxes in batches (mailboxes/services/
bulk_save.py). A file applied that way must end exactly as it does applied one record at a
time through the single-record services: the same rows, versions, consequences and
history, the same plan, and the same first error."""

import json
from collections import Counter

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailboxes.config import apply as apply_module
from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from mailboxes.services.queues import queue_create
from mailboxes.services.users import user_create
from serverprofiles.models import EmailServerProfile
from tests.fixtures.commands import database_snapshot

SECRET = "Setwise-Secret-8!"


def document(users: int = 7) -> dict:
    """Users, a queue and a forward mailbox, and mailbox entries that take every path:
    batched changes, and the records that go one by one (approval, activation, a new
    address)."""
    return {
        "server_profiles": [
            {
                "name": "IMAP",
                "server_type": "imap-smtp",
                "incoming_server": "imap.contoso.test",
                "outgoing_server": "smtp.contoso.test",
                "incoming_auth": "user-credentials",
            }
        ],
        "settings": {
            "default_server_profile": "IMAP",
            "incoming": "server-side-sync",
            "approval_required_for_users": True,
        },
        "users": [
            {"username": f"u{i}", "full_name": f"User {i}", "email": f"u{i}@contoso.test", "active": i != 3}
            for i in range(users)
        ]
        + [
            {"username": "olga", "full_name": "Olga Renamed"},
            {"username": "pete", "full_name": "Pete", "email": "pete@contoso.test"},
        ],
        "queues": [{"name": "Support", "email": "support@contoso.test", "owner": "u1"}],
        "mailboxes": [
            {
                "email": "u0@contoso.test",
                "allow_credentials": True,
                "username": "u0",
                "password_env": "SW_PW",
            },
            {"email": "u1@contoso.test", "incoming": "forward-mailbox", "outgoing": "none"},
            {"email": "u2@contoso.test", "name": "Two", "approval": "approved"},
            {"email": "u3@contoso.test", "outgoing": "none"},
            {"email": "u4@contoso.test", "active": False},
            {"email": "u5@contoso.test", "outgoing": "none"},
            {
                "email": "fwd@contoso.test",
                "name": "Forward",
                "forward": True,
                "server_profile": "IMAP",
                "allow_credentials": True,
                "username": "fwd",
                "password_env": "SW_PW",
            },
            {
                "email": "support@contoso.test",
                "delete_after_processing": True,
                "allow_credentials": True,
                "username": "support",
                "password_env": "SW_PW",
            },
            {"email": "Olga@contoso.test", "name": "Olga's box", "approval": "pending"},
            {"email": "pete@contoso.test", "incoming": "none", "approval": "pending"},
            {"email": "desk@contoso.test", "name": "Front desk"},
        ]
        + [{"email": f"u{i}@contoso.test", "outgoing": "none", "act": "outlook"} for i in range(6, users)],
    }


def new_users_and_their_mailboxes() -> dict:
    """document() without its queue: nothing is written between the new users and their
    mailbox entries, so the set-wise path holds those mailboxes back and writes each once,
    with its entry's values (mailboxes/config/apply.py)."""
    data = document()
    data.pop("queues")
    data["mailboxes"] = [entry for entry in data["mailboxes"] if entry["email"] != "support@contoso.test"]
    return data


def empty_the_database():
    for model in (LogEntry, Mailbox, Queue, User, OrganizationSettings, EmailServerProfile):
        model.objects.all().delete()


def seed():
    """What the database holds before the file: an administrator, two users and a queue
    the file names; Pete's mailbox has passed a test, and the queue's mailbox has lost
    its owner (as if written before the owner followed the queue)."""
    User.objects.create_superuser(username="root", email="root@contoso.test", password="Correct-Horse-9")
    olga = user_create(username="olga", email="olga@contoso.test", full_name="Olga")
    user_create(username="pete", email="pete@contoso.test", full_name="Pete")
    Mailbox.objects.filter(email="pete@contoso.test").update(
        incoming_method="server-side-sync",
        outgoing_method="server-side-sync",
        incoming_status="success",
        outgoing_status="success",
        enabled_incoming=True,
        enabled_outgoing=True,
        test_completed_on=timezone.now(),
    )
    queue_create(name="Desk", email="desk@contoso.test", owner=olga)
    Mailbox.objects.filter(email="desk@contoso.test").update(owner=None)


def outcome(run) -> dict:
    """Everything a run leaves behind, by natural keys (ids and timestamps differ)."""
    mailboxes = {
        m.email: (
            m.version,
            m.state,
            m.approval_status,
            m.owner.username if m.owner else None,
            m.get_password() if m.password_ciphertext else None,
            (m.incoming_status, m.outgoing_status, m.act_status),
            (m.enabled_incoming, m.enabled_outgoing, m.enabled_act),
            m.test_completed_on is None,
        )
        for m in Mailbox.objects.select_related("owner")
    }
    users = {
        u.username: (u.version, u.email, u.is_active, u.has_usable_password()) for u in User.objects.all()
    }
    history = Counter(
        (e.content_type.model, e.object_repr, e.action_flag, e.change_message, e.user.username)
        for e in LogEntry.objects.select_related("content_type", "user")
    )
    return {"export": run("export_config").stdout, "mailboxes": mailboxes, "users": users, "history": history}


@pytest.fixture
def apply_file(run, tmp_path, monkeypatch):
    monkeypatch.setenv("SW_PW", SECRET)
    # Batches of two: every path meets a batch boundary, and a batch is flushed before
    # each record that goes one by one.
    monkeypatch.setattr(apply_module, "BATCH_SIZE", 2)

    def apply(data, *args, setwise: bool = True):
        monkeypatch.setattr(apply_module, "SETWISE", setwise)
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return run("apply_config", str(path), *args)

    return apply


def applied_both_ways(apply_file, run, make_document):
    """Apply a file twice on the seeded database, one record at a time and then in
    batches; both ways must print and leave the same. Their (shared) lines and state."""
    results = {}
    for setwise in (False, True):
        empty_the_database()
        seed()
        applied = apply_file(make_document(), setwise=setwise)
        again = apply_file(make_document(), setwise=setwise)
        results[setwise] = (applied.lines, again.lines, outcome(run))
    assert results[True] == results[False]
    return results[True]


def test_batches_end_as_one_record_at_a_time_does(apply_file, run, db):
    lines, again, state = applied_both_ways(apply_file, run, document)

    assert lines[-1].endswith("created 10, updated 13, unchanged 1.")
    assert again[-1].endswith("created 0, updated 0, unchanged 24.")
    # The rules' consequences happened on the batched path too.
    assert state["mailboxes"]["u0@contoso.test"][4] == SECRET
    assert state["mailboxes"]["u3@contoso.test"][1] == "inactive"  # M16: its user is inactive
    assert state["mailboxes"]["support@contoso.test"][3] == "u1"  # follows its queue's owner
    assert state["mailboxes"]["desk@contoso.test"][3] == "olga"
    # M13: the new incoming method's test result is gone, the outgoing one's stays.
    assert state["mailboxes"]["pete@contoso.test"][5:] == (
        ("not-run", "success", "not-run"),
        (False, True, False),
        False,
    )
    assert state["users"]["olga"][1] == "Olga@contoso.test"  # M12
    assert SECRET not in state["export"]


def test_new_users_mailboxes_written_once_end_as_one_record_at_a_time_does(apply_file, run, db):
    lines, again, state = applied_both_ways(apply_file, run, new_users_and_their_mailboxes)

    assert lines[-1].endswith("created 9, updated 12, unchanged 1.")
    assert again[-1].endswith("created 0, updated 0, unchanged 22.")
    u0 = state["mailboxes"]["u0@contoso.test"]
    assert (u0[0], u0[2], u0[4]) == (2, "pending", SECRET)  # created, then changed by its entry
    assert state["mailboxes"]["u2@contoso.test"][2] == "approved"  # applied on its own
    assert state["mailboxes"]["u3@contoso.test"][1] == "inactive"  # M16: its user is inactive
    assert state["mailboxes"]["u4@contoso.test"][1] == "inactive"
    u0_history = {key[2:4] for key in state["history"] if key[1] in ("User 0", "User 0 <u0@contoso.test>")}
    assert u0_history == {
        (1, "Added (via apply_config)."),
        (2, "Changed Allow to Use Credentials for Email Processing, User Name, Password (via apply_config)."),
    }


def test_a_new_users_mailbox_with_an_entry_is_inserted_and_never_updated(apply_file, run, db):
    data = new_users_and_their_mailboxes()
    data["users"] = [user for user in data["users"] if user["username"] not in ("olga", "pete")]
    data["mailboxes"] = [
        entry for entry in data["mailboxes"] if entry["email"].startswith(("u0", "u1", "u5", "u6", "fwd"))
    ]
    seed()
    with CaptureQueriesContext(connection) as queries:
        apply_file(data)

    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if sql.startswith('UPDATE "mailboxes_mailbox"')]
    assert Mailbox.objects.get(email="u0@contoso.test").get_password() == SECRET
    assert Mailbox.objects.get(email="u1@contoso.test").incoming_method == "forward-mailbox"


@pytest.mark.parametrize("data", [document, new_users_and_their_mailboxes])
def test_a_dry_run_plans_the_same_in_batches(data, apply_file, db):
    plans = {}
    for setwise in (False, True):
        empty_the_database()
        seed()
        before = database_snapshot()
        plans[setwise] = apply_file(data(), "--dry-run", setwise=setwise).lines
        assert database_snapshot() == before
    assert plans[True] == plans[False]
    assert "update    mailboxes[0] (u0@contoso.test): allow_credentials, username, password" in plans[True]


def broken(*changes, base=document) -> dict:
    """base() with (section, index, {key: value}) changes; index None inserts a record
    at 4, and a value None removes the key."""
    data = base()
    for section, index, values in changes:
        if index is None:
            data[section].insert(4, values)
            continue
        for key, value in values.items():
            if value is None:
                data[section][index].pop(key)
            else:
                data[section][index][key] = value
    return data


M8 = (
    "act: Appointments, Contacts, and Tasks cannot use Server-Side Synchronization with a "
    "POP3/SMTP or IMAP/SMTP server profile: those servers carry no calendars or contacts."
)
BROKEN_FILES = {
    "a new user's address is invalid": (
        broken(("users", 3, {"email": "not-an-address"})),
        "users[3] (u3): email: Enter a valid email address.",
    ),
    "two new users share an address": (
        broken(("users", None, {"username": "extra", "email": "U2@Contoso.test"})),
        "users[4] (extra): email: Another mailbox already uses this email address.",
    ),
    "two new users of one batch share an address": (
        broken(("users", None, {"username": "extra", "email": "U4@Contoso.test"})),
        "users[5] (u4): email: Another mailbox already uses this email address.",
    ),
    "a new user takes an existing mailbox's address": (
        broken(("users", None, {"username": "extra", "email": "pete@contoso.test"})),
        "users[4] (extra): email: Another mailbox already uses this email address.",
    ),
    "a new user's error comes before a later user's": (
        broken(("users", 2, {"email": "not-an-address"}), ("users", 7, {"full_name": "x" * 201})),
        "users[2] (u2): email: Enter a valid email address.",
    ),
    "a batched mailbox breaks a rule": (
        broken(("mailboxes", 3, {"act": "server-side-sync"})),
        f"mailboxes[3] (u3@contoso.test): {M8}",
    ),
    "a batched error comes before a later record's": (
        broken(("mailboxes", 0, {"username": ""}), ("mailboxes", 1, {"server_profile": "Nope"})),
        "mailboxes[0] (u0@contoso.test): username: Enter the user name, or set Allow to Use "
        "Credentials to No.",
    ),
    "a batched error comes before a record applied on its own": (
        broken(("mailboxes", 1, {"act": "server-side-sync"}), ("mailboxes", 2, {"name": ""})),
        f"mailboxes[1] (u1@contoso.test): {M8}",
    ),
    "a queue mailbox refuses a user-only method": (
        broken(("mailboxes", 7, {"outgoing": "outlook"})),
        "mailboxes[7] (support@contoso.test): outgoing: A queue mailbox's Outgoing Email must be "
        "None or Server-Side Synchronization or Email Router.",
    ),
    "a new queue takes a new user's address": (
        broken(("queues", 0, {"email": "U0@contoso.test"})),
        "queues[0] (Support): email: Another mailbox already uses this email address.",
    ),
    "a new user takes the address of a held mailbox of an earlier batch": (
        broken(
            ("users", None, {"username": "extra", "email": "U1@Contoso.test"}),
            base=new_users_and_their_mailboxes,
        ),
        "users[4] (extra): email: Another mailbox already uses this email address.",
    ),
    "a user changed on its own takes a held mailbox's address": (
        broken(("users", 8, {"email": "u0@contoso.test"}), base=new_users_and_their_mailboxes),
        "users[8] (pete): email: Another mailbox already uses this email address.",
    ),
    "a held mailbox's entry breaks a rule": (
        broken(("mailboxes", 3, {"act": "server-side-sync"}), base=new_users_and_their_mailboxes),
        f"mailboxes[3] (u3@contoso.test): {M8}",
    ),
    "a held mailbox's entry applied on its own breaks a rule": (
        broken(("mailboxes", 2, {"act": "server-side-sync"}), base=new_users_and_their_mailboxes),
        f"mailboxes[2] (u2@contoso.test): {M8}",
    ),
    "a mailbox's password is missing": (
        broken(("mailboxes", 0, {"password_env": None})),
        "mailboxes[0] (u0@contoso.test): password_env: Enter the password, or set Allow to Use "
        "Credentials to No.",
    ),
}


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_one_wrong_record_is_named_the_same_and_nothing_is_written(name, apply_file, db):
    data, message = BROKEN_FILES[name]
    seed()
    before = database_snapshot()
    for setwise in (False, True):
        with pytest.raises(CommandError) as raised:
            apply_file(data, setwise=setwise)
        assert str(raised.value) == message, f"setwise={setwise}"
        assert database_snapshot() == before


def test_a_batch_costs_the_same_queries_whatever_its_size(apply_file, monkeypatch, db):
    monkeypatch.setattr(apply_module, "BATCH_SIZE", 1000)
    counts = []
    for users in (10, 30):
        empty_the_database()
        seed()
        with CaptureQueriesContext(connection) as queries:
            apply_file(document(users), setwise=True)
        counts.append(len(queries))
    assert counts[0] == counts[1]

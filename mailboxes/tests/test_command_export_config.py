import io
import json

import pytest
from django.core.management.base import CommandError

from mailboxadmin.commands import Progress
from mailboxes.config import export
from mailboxes.models import Mailbox, OrganizationSettings
from tests.fixtures.commands import SECRETS


def test_writes_every_section_in_the_file_format(run, configuration):
    data = json.loads(run("export_config").stdout)

    assert list(data) == ["settings", "server_profiles", "users", "queues", "mailboxes"]
    assert data["settings"] == {
        "default_server_profile": "Contoso IMAP",
        "incoming": "server-side-sync",
        "outgoing": "none",
        "act": "none",
        "approval_required_for_users": True,
        "approval_required_for_queues": True,
        "time_zone": "UTC",
        "disable_after_failures": 10,
    }
    exchange = data["server_profiles"][0]
    assert exchange["name"] == "Contoso Exchange"
    assert exchange["owner"] == "alice"
    assert (exchange["incoming_auth"], exchange["outgoing_auth"]) == ("profile-credentials", "windows")
    assert exchange["username"] == "svc-mail"
    assert exchange["password_set"] is True
    assert "outgoing_password_set" not in exchange
    assert data["server_profiles"][1]["process_email_from"] == "2024-01-01T06:30:00+00:00"
    assert data["users"][2] == {
        "username": "carol",
        "full_name": "Carol",
        "email": "carol@contoso.test",
        "active": False,
    }
    assert data["queues"][0] == {
        "name": "Sales",
        "email": "sales@contoso.test",
        "type": "public",
        "owner": "bob",
        "description": "Leads",
        "convert_incoming": "all",
        "active": False,
    }
    mailboxes = {m["email"]: m for m in data["mailboxes"]}
    assert mailboxes["fwd@contoso.test"] == {
        "email": "fwd@contoso.test",
        "name": "Forward box",
        "forward": True,
        "owner": "bob",
        "active": True,
        "server_profile": "Contoso IMAP",
        "incoming": "server-side-sync",
        "outgoing": "none",
        "act": "none",
        "process_email_after": "2024-03-01T00:00:00+00:00",
        "delete_after_processing": True,
        "allow_credentials": True,
        "username": "fwd@contoso.test",
        "password_set": True,
    }
    assert mailboxes["alice@contoso.test"] == {
        "email": "alice@contoso.test",
        "name": "Alice Example",
        "active": True,
        "server_profile": "Contoso IMAP",
        "incoming": "forward-mailbox",
        "outgoing": "none",
        "act": "none",
        "process_email_after": None,
        "delete_after_processing": False,
        "allow_credentials": False,
        "username": "",
        "approval": "approved",
    }
    assert [m["approval"] for m in data["mailboxes"] if not m.get("forward")] == [
        "approved",  # alice
        "rejected",  # bob
        "pending",  # carol
        "empty",  # dave
        "pending",  # sales
        "pending",  # support
    ]


def test_never_writes_a_secret(run, configuration):
    ciphertexts = [configuration["exchange"].incoming_password_ciphertext] + [
        m.password_ciphertext for m in Mailbox.objects.exclude(password_ciphertext="")
    ]

    result = run("export_config")

    assert len(ciphertexts) == 3
    for secret in (*SECRETS, *ciphertexts):
        assert secret not in result.output
    assert result.stdout.count('"password_set": true') == 3


def test_is_ordered_by_natural_keys_and_stable(run, configuration):
    first, second = run("export_config").stdout, run("export_config").stdout

    assert first == second
    data = json.loads(first)
    assert [p["name"] for p in data["server_profiles"]] == ["Contoso Exchange", "Contoso IMAP"]
    assert [u["username"] for u in data["users"]] == ["alice", "bob", "carol", "dave"]
    assert [q["name"] for q in data["queues"]] == ["Sales", "Support"]
    emails = [m["email"] for m in data["mailboxes"]]
    assert emails == sorted(emails)


def test_writes_nothing_to_the_database(run, configuration, unchanged_database):
    with unchanged_database():
        run("export_config")


def test_an_empty_database_exports_the_default_settings_without_creating_them(run, db):
    data = json.loads(run("export_config").stdout)

    assert data["settings"]["approval_required_for_users"] is True
    assert data["server_profiles"] == data["users"] == data["queues"] == data["mailboxes"] == []
    assert not OrganizationSettings.objects.exists()


def test_output_writes_the_file_and_a_summary(run, configuration, tmp_path):
    target = tmp_path / "config.json"

    result = run("export_config", "--output", str(target))

    assert target.read_text(encoding="utf-8") == run("export_config").stdout
    assert result.lines == [
        f"Exported the settings, 2 server profiles, 4 users, 2 queues and 7 mailboxes to {target}."
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left


def test_to_standard_output_the_summary_goes_to_standard_error(run, configuration):
    result = run("export_config")

    json.loads(result.stdout)
    assert result.stderr == "Exported the settings, 2 server profiles, 4 users, 2 queues and 7 mailboxes.\n"


def test_an_unwritable_output_is_one_line_and_leaves_no_file(run, configuration, tmp_path):
    target = tmp_path / "missing" / "config.json"

    with pytest.raises(
        CommandError, match=r"^--output: cannot write .*config.json: No such file or directory\.$"
    ):
        run("export_config", "--output", str(target))

    assert not (tmp_path / "missing").exists()


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


def test_rows_are_written_as_they_are_read(configuration, make_user, monkeypatch):
    """Memory stays flat: with chunks of 2, the 17 mailboxes reach the stream in 9 writes."""
    for n in range(10):
        make_user(f"extra{n:02}", email=f"extra{n:02}@contoso.test")
    monkeypatch.setattr(export, "CHUNK_SIZE", 2)
    whole = CountingStream()
    export.config_export(whole)
    monkeypatch.setattr(export, "CHUNK_SIZE", 10_000)
    single = CountingStream()

    counts = export.config_export(single)

    assert whole.getvalue() == single.getvalue()
    assert counts["mailboxes"] == 17
    # One write per chunk of rows, plus one per section opening and closing.
    assert whole.writes - single.writes >= 17 // 2 - 1


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_shown_only_on_a_terminal():
    from django.core.management.base import OutputWrapper

    terminal, pipe = OutputWrapper(Terminal()), OutputWrapper(io.StringIO())
    for stream in (terminal, pipe):
        progress = Progress(stream, interval=0)
        progress("mailboxes", 2000)
        progress.finish()

    assert "mailboxes: 2,000 records" in terminal._out.getvalue()
    assert pipe._out.getvalue() == ""

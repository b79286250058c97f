"""export_config and apply_config together: a configuration survives the trip."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management.base import CommandError

from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from serverprofiles.models import EmailServerProfile
from tests.fixtures.commands import SECRETS, database_snapshot

RESTORED = "Restored-Secret-5!"


def empty_the_database():
    """What `flush` does to these tables, in an order that works inside the test's transaction."""
    for model in (LogEntry, Mailbox, Queue, User, OrganizationSettings, EmailServerProfile):
        model.objects.all().delete()
    assert all(not any(rows) for rows in database_snapshot().values())


def test_an_export_applied_to_its_own_database_changes_nothing(run, configuration, tmp_path):
    exported = tmp_path / "config.json"
    run("export_config", "--output", str(exported))
    before = database_snapshot()

    result = run("apply_config", str(exported))

    assert database_snapshot() == before
    assert result.lines == [f"Applied {exported}: created 0, updated 0, unchanged 16."]


def test_export_apply_on_an_empty_database_export_gives_the_same_file(
    run, configuration, tmp_path, monkeypatch
):
    first = run("export_config").stdout
    empty_the_database()
    # The export cannot carry secrets: the operator names where each one comes from.
    restored = tmp_path / "restored.json"
    restored.write_text(first.replace('"password_set": true', '"password_env": "RESTORED_PASSWORD"'))
    monkeypatch.setenv("RESTORED_PASSWORD", RESTORED)

    applied = run("apply_config", str(restored))
    second = run("export_config").stdout
    again = run("apply_config", str(restored))

    assert second == first
    assert applied.lines[-1] == f"Applied {restored}: created 9, updated 5, unchanged 2."
    assert again.lines == [f"Applied {restored}: created 0, updated 0, unchanged 16."]
    assert Mailbox.objects.get(email="bob@contoso.test").get_password() == RESTORED
    assert EmailServerProfile.objects.get(name="Contoso Exchange").get_incoming_password() == RESTORED


def test_an_export_with_credentials_needs_their_passwords_on_an_empty_database(run, configuration, tmp_path):
    exported = tmp_path / "config.json"
    run("export_config", "--output", str(exported))
    empty_the_database()
    before = database_snapshot()

    with pytest.raises(CommandError) as raised:
        run("apply_config", str(exported))

    assert str(raised.value) == (
        "server_profiles[0] (Contoso Exchange): password_set: the file says a password is set, but "
        'none is stored here; give it with "password_env".'
    )
    assert database_snapshot() == before


def test_the_plan_of_a_dry_run_is_what_the_run_does(run, configuration, tmp_path, monkeypatch):
    first = run("export_config").stdout
    empty_the_database()
    restored = tmp_path / "restored.json"
    restored.write_text(first.replace('"password_set": true', '"password_env": "RESTORED_PASSWORD"'))
    monkeypatch.setenv("RESTORED_PASSWORD", RESTORED)

    planned = run("apply_config", str(restored), "--dry-run")
    done = run("apply_config", str(restored), verbosity=2)

    assert planned.lines[:-1] == done.lines[:-1]
    assert len(planned.lines) == 17  # every record, then the summary


def test_no_secret_reaches_any_output(run, configuration, tmp_path, monkeypatch):
    exported = run("export_config")
    data = json.loads(exported.stdout)
    data["mailboxes"][1]["password_env"] = "NEW_BOB_PASSWORD"
    monkeypatch.setenv("NEW_BOB_PASSWORD", "New-Bob-Secret-6!")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))

    outputs = [
        exported,
        run("apply_config", str(path), "--dry-run", verbosity=2),
        run("apply_config", str(path), verbosity=2),
        run("export_config"),
    ]

    for result in outputs:
        for secret in (*SECRETS, "New-Bob-Secret-6!"):
            assert secret not in result.output
    assert "update    mailboxes[1] (bob@contoso.test): password" in outputs[2].lines

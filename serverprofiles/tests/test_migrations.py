"""Data migrations of server profiles."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("serverprofiles", "0003_connectionslot")
AFTER = ("serverprofiles", "0004_timeout_at_most_a_minute")
OAUTH = ("serverprofiles", "0005_oauth")


def migrate(target):
    """Migrate to `target`; the historical profile model there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps.get_model("serverprofiles", "EmailServerProfile")


@pytest.fixture
def back_to_latest():
    """Later tests need every migration applied, whatever the test left."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_timeouts_above_a_minute_are_clamped_to_a_minute(back_to_latest):
    Profile = migrate(BEFORE)
    for name, timeout in [("Slow", 100000), ("Minute", 60000), ("Quick", 2000)]:
        Profile.objects.create(
            name=name, server_type="imap-smtp", incoming_server="imap.example.test", timeout_ms=timeout
        )

    Profile = migrate(AFTER)

    timeouts = dict(Profile.objects.values_list("name", "timeout_ms"))
    assert timeouts == {"Slow": 60000, "Minute": 60000, "Quick": 2000}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_exchange_online_profiles_move_to_office365_imap_and_smtp(back_to_latest):
    Profile = migrate(AFTER)
    ews = "https://outlook.office365.com/EWS/Exchange.asmx"
    Profile.objects.create(
        name="Online",
        server_type="exchange-online",
        incoming_auth="server-to-server",
        outgoing_auth="server-to-server",
        incoming_server=ews,
        outgoing_server=ews,
    )
    Profile.objects.create(name="IMAP", server_type="imap-smtp", incoming_server="imap.example.test")

    Profile = migrate(OAUTH)

    online = Profile.objects.get(name="Online")
    assert (online.incoming_server, online.incoming_port, online.incoming_ssl) == (
        "outlook.office365.com",
        993,
        True,
    )
    assert (online.outgoing_server, online.outgoing_port, online.outgoing_ssl) == (
        "smtp.office365.com",
        587,
        False,
    )
    assert online.oauth_provider == "microsoft"
    assert Profile.objects.get(name="IMAP").oauth_provider == ""

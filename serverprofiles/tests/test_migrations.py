"""Data migrations of server profiles."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mailboxadmin import encryption
from mailboxadmin.encryption import Destination
from serverprofiles.bindings import token_url_destination

BEFORE = ("serverprofiles", "0003_connectionslot")
AFTER = ("serverprofiles", "0004_timeout_at_most_a_minute")
OAUTH = ("serverprofiles", "0005_oauth")
OAUTH_SERVERS = ("serverprofiles", "0006_bind_oauth_secrets_to_servers")


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


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_oauth_secrets_are_bound_to_their_profiles_servers_too(back_to_latest):
    url = "https://login.contoso.test/tenant/oauth2/v2.0/token"
    Profile = migrate(OAUTH)
    fields = {
        "server_type": "imap-smtp",
        "incoming_server": "imap.contoso.test",
        "incoming_port": 993,
        "incoming_ssl": True,
        "outgoing_server": "smtp.contoso.test",
        "outgoing_port": 587,
        "outgoing_ssl": False,
        "incoming_auth": "oauth2",
        "oauth_provider": "other",
        "oauth_token_url": url,
        "oauth_client_id": "client",
    }
    secret = encryption.encrypt_bound("Client-Secret-1", (token_url_destination(url),))
    elsewhere = encryption.encrypt_bound("Client-Secret-2", (token_url_destination(url + "/old"),))
    Profile.objects.create(name="Bound", oauth_client_secret_ciphertext=secret, **fields)
    Profile.objects.create(name="Elsewhere", oauth_client_secret_ciphertext=elsewhere, **fields)

    Profile = migrate(OAUTH_SERVERS)

    def destinations(name):
        bound = encryption.decrypt_bound(
            Profile.objects.get(name=name).oauth_client_secret_ciphertext, record=name
        )
        return bound.secret, set(bound.destinations)

    imap, smtp = (
        Destination.of("imap.contoso.test", 993, True),
        Destination.of("smtp.contoso.test", 587, False),
    )
    assert destinations("Bound") == ("Client-Secret-1", {token_url_destination(url), imap, smtp})
    # The token URL it was entered for stays: a secret refused before is refused still.
    assert destinations("Elsewhere") == ("Client-Secret-2", {token_url_destination(url + "/old"), imap, smtp})

    Profile = migrate(OAUTH)

    assert destinations("Bound") == ("Client-Secret-1", {token_url_destination(url)})

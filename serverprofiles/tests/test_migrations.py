"""Data migrations of server profiles."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from serverprofiles.models import EmailServerProfile

BEFORE = ("serverprofiles", "0003_connectionslot")
AFTER = ("serverprofiles", "0004_timeout_at_most_a_minute")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_timeouts_above_a_minute_are_clamped_to_a_minute():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Profile = executor.loader.project_state([BEFORE]).apps.get_model("serverprofiles", "EmailServerProfile")
    for name, timeout in [("Slow", 100000), ("Minute", 60000), ("Quick", 2000)]:
        Profile.objects.create(
            name=name, server_type="imap-smtp", incoming_server="imap.example.test", timeout_ms=timeout
        )

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])

    timeouts = dict(EmailServerProfile.objects.values_list("name", "timeout_ms"))
    assert timeouts == {"Slow": 60000, "Minute": 60000, "Quick": 2000}

"""Test Connection of OAuth values in the background (SPEC 7, SPEC 9): a typed client secret
waits for the worker only encrypted and is erased once tested; a blank one means the
stored one."""

import pytest
from django.urls import reverse

from serverprofiles.models import ConnectionTestStatus, ProfileConnectionTest
from tests.test_connection_test_background import (
    database_tasks,
    everything_stored,
    post_test_connection,
    run_worker,
)
from tests.test_oauth_mail_servers import make_oauth_profile, no_cached_tokens

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

__all__ = ["database_tasks", "make_oauth_profile", "no_cached_tokens"]  # fixtures used here

TYPED = "Typed-Client-Secret-On-Form-29"


def test_a_typed_client_secret_is_kept_encrypted_until_tested_then_erased(
    client, sysadmin, make_oauth_profile, database_tasks, oauth_server
):
    profile = make_oauth_profile()
    client.force_login(sysadmin)

    post_test_connection(client, profile, oauth_client_secret=TYPED)
    test = ProfileConnectionTest.objects.get()
    assert test.oauth_client_secret_ciphertext and TYPED not in everything_stored()

    run_worker()

    test.refresh_from_db()
    assert test.status == ConnectionTestStatus.FINISHED
    assert test.oauth_client_secret_ciphertext == ""
    assert test.result["incoming"]["cause"] == "token-refused"  # the typed secret was used
    assert "invalid_client" in test.result["incoming"]["message"]
    assert TYPED not in everything_stored()
    assert oauth_server.client_secret not in everything_stored()


def test_a_blank_client_secret_means_the_stored_one(
    client, manager, make_oauth_profile, database_tasks, oauth_server
):
    profile = make_oauth_profile()
    client.force_login(manager)

    post_test_connection(client, profile, oauth_scope="another-scope")
    test = ProfileConnectionTest.objects.get()
    run_worker()

    status = client.get(reverse("serverprofiles:connection-test-status", args=[test.pk])).json()
    incoming, outgoing = status["results"]
    assert incoming["ok"] and outgoing["ok"], status
    assert "access token" in incoming["text"]
    assert oauth_server.requests["/token"] == 1
    profile.refresh_from_db()
    assert profile.oauth_scope != "another-scope"  # nothing saved

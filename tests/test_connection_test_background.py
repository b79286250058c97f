"""Test Connection runs in a background worker: the request returns at once, the result is
read (by the user who asked alone) when it is in, and a typed password is never stored
in plain text, neither in the test's row nor in the task queue's table.

These tests use the production task backend (django-tasks-db) and run its worker,
`db_worker --batch`, where a worker process would.
"""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from serverprofiles.connection_tests import KEPT_FOR
from serverprofiles.models import AuthenticationMethod, ConnectionTestStatus, ProfileConnectionTest
from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME
from tests.test_test_and_enable_pages import _profile_form_data

# The worker runs here as in a worker process: outside any test transaction (it closes
# a connection it finds inside one), so the data is committed, and restored afterwards.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TYPED = "Typed-On-The-Form-55!"


@pytest.fixture
def database_tasks(settings):
    """The production backend: enqueued tasks wait in the database for a worker."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)


def post_test_connection(client, profile, **changes):
    data = _profile_form_data(client, profile)
    data.update(changes, test_connection="")
    return client.post(profile.get_absolute_url(), data)


def everything_stored() -> str:
    """Every row of every table, as text."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        return "\n".join(
            repr(cursor.execute(f"select * from {connection.ops.quote_name(t)}") or cursor.fetchall())
            for t in tables
        )


def test_test_connection_returns_at_once_without_contacting_the_server(
    client, manager, make_test_server_profile, scripted_server, database_tasks
):
    contacted = []

    def never_answer(sock, stop):
        contacted.append(True)
        stop.wait(30)

    profile = make_test_server_profile(incoming_port=scripted_server(never_answer), timeout_ms=12000)
    client.force_login(manager)
    started = time.monotonic()

    response = post_test_connection(client, profile)

    assert time.monotonic() - started < 2
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "Testing…" in page
    assert contacted == []  # the request left the connection to a worker
    test = ProfileConnectionTest.objects.get()
    assert (test.status, test.requested_by, test.profile) == (ConnectionTestStatus.PENDING, manager, profile)
    assert reverse("serverprofiles:connection-test-status", args=[test.pk]) in page
    status = client.get(reverse("serverprofiles:connection-test-status", args=[test.pk])).json()
    assert status == {"finished": False, "status": "Waiting for a worker", "results": []}


def test_the_worker_tests_the_unsaved_values_and_the_result_is_shown(
    client, manager, make_test_server_profile, database_tasks
):
    profile = make_test_server_profile()
    client.force_login(manager)
    post_test_connection(
        client,
        profile,
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        incoming_password=MAIL_PASSWORD,
        description="Not saved by a test",
    )
    test = ProfileConnectionTest.objects.get()

    run_worker()

    status = client.get(reverse("serverprofiles:connection-test-status", args=[test.pk])).json()
    assert status["finished"] and status["status"] == "Finished"
    incoming, outgoing = status["results"]
    assert incoming["ok"] and incoming["text"].startswith("Test Connection, incoming:")
    assert "logged in as" in incoming["text"]  # with the typed password
    assert outgoing["ok"] and outgoing["text"].startswith("Test Connection, outgoing:")
    page = client.get(reverse("serverprofiles:connection-test", args=[test.pk])).content.decode()
    assert "logged in as" in page and "Testing…" not in page  # the page without JavaScript
    profile.refresh_from_db()
    assert profile.description != "Not saved by a test"
    assert profile.incoming_auth == AuthenticationMethod.USER_CREDENTIALS


def test_a_typed_password_is_never_stored_in_plain_text_and_is_erased_once_tested(
    client, sysadmin, make_test_server_profile, database_tasks
):
    profile = make_test_server_profile()
    client.force_login(sysadmin)
    post_test_connection(
        client,
        profile,
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        incoming_password=TYPED,
    )
    test = ProfileConnectionTest.objects.get()
    [queued] = DBTaskResult.objects.all()

    assert queued.args_kwargs == {"args": [test.pk], "kwargs": {}}  # the row's id, nothing else
    assert test.incoming_password_ciphertext  # kept encrypted until the worker runs
    assert TYPED not in everything_stored()

    run_worker()

    test.refresh_from_db()
    assert test.status == ConnectionTestStatus.FINISHED
    assert (test.incoming_password_ciphertext, test.outgoing_password_ciphertext) == ("", "")
    assert test.result["incoming"]["cause"] == "authentication-failed"  # the typed one was used
    stored = everything_stored()
    assert TYPED not in stored
    assert MAIL_PASSWORD not in stored


def test_only_the_user_who_asked_can_read_the_result(
    client, manager, sysadmin, readonly, make_user, make_test_server_profile
):
    from django.contrib.auth.models import Group

    profile = make_test_server_profile()
    client.force_login(manager)
    post_test_connection(client, profile)  # run at once by the test settings' backend
    test = ProfileConnectionTest.objects.get()
    other_manager = make_user(is_staff=True)
    other_manager.groups.add(Group.objects.get(name="Mailbox Manager"))
    urls = [
        reverse("serverprofiles:connection-test", args=[test.pk]),
        reverse("serverprofiles:connection-test-status", args=[test.pk]),
    ]

    for url in urls:
        assert client.get(url).status_code == 200
        assert "Test Connection, incoming:" in client.get(url).content.decode()
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    for user, status in [(readonly, 403), (other_manager, 404), (sysadmin, 404)]:
        client.force_login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == status, (user, url)
            assert "Test Connection, incoming:" not in response.content.decode()
    client.force_login(manager)
    assert client.post(urls[1]).status_code == 405


def test_a_user_without_the_test_permission_cannot_start_one(client, readonly, make_test_server_profile):
    profile = make_test_server_profile()
    client.force_login(readonly)

    response = client.post(profile.get_absolute_url(), {"test_connection": ""})

    assert response.status_code == 403
    assert not ProfileConnectionTest.objects.exists()


def test_values_that_cannot_be_tried_are_refused_on_the_form_and_nothing_is_queued(
    client, sysadmin, make_test_server_profile, database_tasks
):
    profile = make_test_server_profile()
    client.force_login(sysadmin)

    response = post_test_connection(client, profile, incoming_server="imap://bad host/")

    assert response.status_code == 200
    assert "must be a host name" in response.content.decode()
    assert not ProfileConnectionTest.objects.exists() and not DBTaskResult.objects.exists()


def test_old_tests_are_deleted_when_a_new_one_starts(
    client, sysadmin, make_test_server_profile, database_tasks
):
    profile = make_test_server_profile()
    client.force_login(sysadmin)
    post_test_connection(client, profile)
    post_test_connection(client, profile)
    old, recent = ProfileConnectionTest.objects.order_by("pk")
    ProfileConnectionTest.objects.filter(pk=old.pk).update(
        created_on=old.created_on - KEPT_FOR - timedelta(1)
    )

    post_test_connection(client, profile)

    assert old.pk not in ProfileConnectionTest.objects.values_list("pk", flat=True)
    assert ProfileConnectionTest.objects.filter(pk=recent.pk).exists()
    assert ProfileConnectionTest.objects.count() == 2


def test_a_test_run_twice_is_run_once(client, sysadmin, make_test_server_profile, database_tasks):
    from serverprofiles.connection_tests import profile_connection_test_run

    client.force_login(sysadmin)
    post_test_connection(client, make_test_server_profile())
    test = ProfileConnectionTest.objects.get()

    first = profile_connection_test_run(test.pk)
    second = profile_connection_test_run(test.pk)

    assert first["incoming"]["ok"] and second is None


def test_the_database_refuses_a_finished_test_that_keeps_a_password(
    client, sysadmin, make_test_server_profile
):
    from django.db import IntegrityError, transaction

    client.force_login(sysadmin)
    post_test_connection(client, make_test_server_profile())  # run at once by the test settings' backend
    test = ProfileConnectionTest.objects.get()

    assert test.status == ConnectionTestStatus.FINISHED
    with pytest.raises(IntegrityError), transaction.atomic():
        ProfileConnectionTest.objects.filter(pk=test.pk).update(incoming_password_ciphertext="gAAAA-token")

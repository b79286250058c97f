import logging
import re
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Mailbox, User

PASSWORD_LINE = re.compile(r"^Password \(shown only this once; change it after logging in\): (\S+)$", re.M)


def bootstrap_admin(*args, **options) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("bootstrap_admin", *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def printed_password(output: str) -> str:
    match = PASSWORD_LINE.search(output)
    assert match, output
    return match.group(1)


@pytest.mark.django_db
def test_creates_a_system_administrator_whose_printed_password_logs_in(client):
    output, _ = bootstrap_admin()

    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.is_active
    assert list(admin.groups.values_list("name", flat=True)) == ["System Administrator"]
    assert admin.email == "admin@example.invalid"
    assert admin.mailbox.kind == Mailbox.Kind.USER
    assert client.login(username="admin", password=printed_password(output))
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_password_is_printed_once_and_goes_nowhere_else(caplog):
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        output, errors = bootstrap_admin()
    password = printed_password(output)

    assert len(password) >= 20
    assert output.count(password) == 1
    assert password not in errors
    assert all(password not in record.getMessage() for record in caplog.records)
    assert all(password not in query["sql"] for query in queries.captured_queries)
    entry = LogEntry.objects.get()
    assert "bootstrap_admin" in entry.change_message
    assert password not in entry.change_message + entry.object_repr


@pytest.mark.django_db
def test_second_run_creates_nothing_and_prints_no_password(client):
    first, _ = bootstrap_admin()
    password = printed_password(first)

    second, _ = bootstrap_admin()

    assert "An administrator already exists (admin); nothing created." in second
    assert "Password" not in second
    assert password not in second
    assert User.objects.count() == 1
    assert client.login(username="admin", password=password), "the first password still works"


@pytest.mark.django_db
def test_an_existing_superuser_of_another_name_counts_as_the_administrator(make_user):
    make_user(username="root", is_staff=True, is_superuser=True)

    output, _ = bootstrap_admin()

    assert "An administrator already exists (root)" in output
    assert not User.objects.filter(username="admin").exists()


@pytest.mark.django_db
def test_username_and_email_options_name_the_administrator():
    bootstrap_admin("--username", "mailadmin", "--email", "it@contoso.test")

    admin = User.objects.get(username="mailadmin")
    assert admin.is_superuser
    assert admin.mailbox.email == "it@contoso.test"


@pytest.mark.django_db
def test_password_from_the_environment_is_used_and_not_printed(client, monkeypatch):
    monkeypatch.setenv("FIRST_ADMIN_PASSWORD", "Chosen-Elsewhere-42")

    output, _ = bootstrap_admin("--password-env", "FIRST_ADMIN_PASSWORD")

    assert "Chosen-Elsewhere-42" not in output
    assert "Password (" not in output
    assert client.login(username="admin", password="Chosen-Elsewhere-42")


@pytest.mark.django_db
def test_refuses_a_username_taken_by_an_ordinary_user(make_user):
    make_user(username="admin")

    with pytest.raises(CommandError, match="A user named 'admin' exists but is not an active superuser"):
        bootstrap_admin()

    assert not User.objects.filter(is_superuser=True).exists()


@pytest.mark.django_db
def test_an_address_another_mailbox_uses_is_refused_in_one_line_and_nothing_is_created(make_user):
    make_user(username="alice", email="admin@example.invalid")

    with pytest.raises(CommandError) as error:
        bootstrap_admin()

    assert "\n" not in str(error.value)
    assert str(error.value) == "user admin: email: Another mailbox already uses this email address."
    assert not User.objects.filter(username="admin").exists()

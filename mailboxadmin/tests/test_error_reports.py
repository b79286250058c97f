"""The error page DEBUG shows (and the report mailed to ADMINS) hides every secret a form
posted, a local variable held, or a setting or the environment holds."""

import sys

import pytest
from django.test import RequestFactory, override_settings
from django.views.debug import (
    ExceptionReporter,
    get_default_exception_reporter_filter,
    technical_500_response,
)

from mailboxadmin.error_reports import SecretsHiddenReporterFilter

SUBSTITUTE = SecretsHiddenReporterFilter.cleansed_substitute
# The secret fields of the sign-in, password, user, mailbox and server profile forms.
POSTED_SECRETS = {
    "password": "Posted-Password-11",
    "password1": "Posted-Password1-12",
    "password2": "Posted-Password2-13",
    "old_password": "Posted-Old-14",
    "new_password1": "Posted-New1-15",
    "new_password2": "Posted-New2-16",
    "incoming_password": "Posted-Incoming-17",
    "outgoing_password": "Posted-Outgoing-18",
    "oauth_client_secret": "Posted-Client-Secret-19",
    "oauth_service_account_key": '{"private_key": "Posted-Private-Key-20"}',
}
ENCRYPTION_KEY = "Rk9yLXRoZS1lcnJvci1yZXBvcnQtdGVzdC0yMQ=="
# As the development server's requests carry it: the process's environment, .env included.
ENVIRONMENT = {"DATABASE_URL": "postgres://mailboxadmin:Db-Password-22@db:5432/mailboxadmin"}


def failed_post():
    """A POST of a form with every kind of secret, and the exception its view raised."""
    request = RequestFactory().post(
        "/serverprofiles/new/", {**POSTED_SECRETS, "name": "Visible Profile"}, **ENVIRONMENT
    )
    incoming_password = POSTED_SECRETS["incoming_password"]  # noqa: F841 — a local the page lists
    try:
        raise RuntimeError("the view failed")
    except RuntimeError:
        return request, sys.exc_info()


@pytest.fixture
def reports():
    with override_settings(DEBUG=True, FIELD_ENCRYPTION_KEYS=[ENCRYPTION_KEY]):
        yield


def test_the_project_filter_is_the_default():
    assert isinstance(get_default_exception_reporter_filter(), SecretsHiddenReporterFilter)


def test_the_debug_page_hides_every_posted_secret_and_shows_the_rest(reports):
    request, exc_info = failed_post()

    page = technical_500_response(request, *exc_info).content.decode()

    for name, value in POSTED_SECRETS.items():
        assert value not in page, name
    assert "Posted-Private-Key-20" not in page  # the key's JSON is escaped on the page
    assert "Visible Profile" in page
    assert SUBSTITUTE in page


def test_the_emailed_report_hides_posted_secrets_and_local_variables_holding_them(reports):
    request, exc_info = failed_post()

    text = ExceptionReporter(request, *exc_info).get_traceback_text()

    for name, value in POSTED_SECRETS.items():
        assert value not in text, name
    assert "Visible Profile" in text


def test_the_debug_page_hides_the_encryption_keys_and_a_database_password_in_the_environment(reports):
    request, exc_info = failed_post()

    page = technical_500_response(request, *exc_info).content.decode()

    assert ENCRYPTION_KEY not in page
    assert "Db-Password-22" not in page

"""Django's password-reset pages exist only when email sending is configured
(EMAIL_HOST): without it each request tried an SMTP server on localhost:25."""

import importlib

import pytest
from django.core import mail
from django.test import Client
from django.urls import clear_url_caches

import mailboxadmin.urls

pytestmark = pytest.mark.django_db

RESET_PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


def reload_urls():
    importlib.reload(mailboxadmin.urls)
    clear_url_caches()


@pytest.fixture
def email_configured(settings):
    settings.EMAIL_HOST = "smtp.contoso.test"
    settings.PASSWORD_RESET_ENABLED = True
    reload_urls()
    yield
    settings.PASSWORD_RESET_ENABLED = False
    reload_urls()


@pytest.mark.parametrize("role", [None, "readonly", "manager", "sysadmin"])
@pytest.mark.parametrize("url", RESET_PAGES)
def test_without_email_the_reset_pages_are_not_found(request, role, url):
    client = Client()
    if role:
        client.force_login(request.getfixturevalue(role))
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "sysadmin@example.test"}).status_code == 404
    assert mail.outbox == []


def test_without_email_signing_out_and_changing_ones_password_remain(sysadmin_client):
    assert sysadmin_client.get("/accounts/password_change/").status_code == 200
    assert sysadmin_client.post("/accounts/logout/").status_code == 302


def test_with_email_configured_a_reset_link_is_sent(email_configured, sysadmin):
    client = Client()
    assert client.get("/accounts/password_reset/").status_code == 200

    response = client.post("/accounts/password_reset/", {"email": "sysadmin@example.test"})

    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["sysadmin@example.test"]]

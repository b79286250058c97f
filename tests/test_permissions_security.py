"""Headers and tokens every page carries: CSP without inline code, no framing, CSRF."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = [
    "/mailboxes/",
    "/mailboxes/new-forward/",
    "/serverprofiles/new/",
    "/users/",
    "/queues/new/",
    "/settings/email/",
]


@pytest.mark.parametrize("url", [*PAGES, "/accounts/login/"])
def test_strict_content_security_policy_and_no_framing(sysadmin_client, org, url):
    response = sysadmin_client.get(url)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("url", [*PAGES, "/accounts/login/"])
def test_pages_have_no_inline_script_or_style(sysadmin_client, org, url):
    html = sysadmin_client.get(url).content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_templates_have_no_inline_code():
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = template.read_text()
        assert "<style" not in text, template
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\s(style|on[a-z]+)=", text), template


@pytest.mark.parametrize("url", PAGES)
def test_forms_refuse_posts_without_the_csrf_token(sysadmin, org, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sysadmin)
    assert 'name="csrfmiddlewaretoken"' in client.get(url).content.decode()
    assert client.post(url, {"name": "x"}).status_code == 403


def test_commands_refuse_posts_without_the_csrf_token(sysadmin, make_forward_mailbox):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sysadmin)
    mailbox = make_forward_mailbox()
    response = client.post("/mailboxes/commands/", {"command": "deactivate", "selected": [mailbox.pk]})
    assert response.status_code == 403
    mailbox.refresh_from_db()
    assert mailbox.is_active


def test_root_redirects_to_the_mailboxes(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/mailboxes/"

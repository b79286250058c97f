"""Stored passwords never leave: no page, re-rendered form or message shows one."""

import pytest

from mailboxes.models import Mailbox
from serverprofiles.models import EmailServerProfile
from tests.fixtures.ui import page_form_data

pytestmark = pytest.mark.django_db

MAILBOX_SECRET = "Mailbox-Plaintext-4711"
INCOMING_SECRET = "Incoming-Plaintext-4712"
OUTGOING_SECRET = "Outgoing-Plaintext-4713"
SECRETS = (MAILBOX_SECRET, INCOMING_SECRET, OUTGOING_SECRET)


def assert_no_secret(response, stored=()):
    body = response.content.decode()
    for secret in (*SECRETS, *stored):
        assert secret not in body, f"{response.request['PATH_INFO']} shows a password"


@pytest.fixture
def configured(sysadmin_client, make_profile, make_forward_mailbox, make_user, make_queue, org):
    """Passwords set through the pages themselves: a mailbox's and a profile's two."""
    mailbox_profile = make_profile(name="User credentials")
    forward = make_forward_mailbox(server_profile=mailbox_profile)
    url = f"/mailboxes/{forward.pk}/"
    data = page_form_data(
        sysadmin_client, url, allow_credentials=True, username="fwd", password=MAILBOX_SECRET
    )
    assert_no_secret(sysadmin_client.post(url, data, follow=True))

    data = page_form_data(
        sysadmin_client,
        "/serverprofiles/new/",
        name="Profile credentials",
        server_type="imap-smtp",
        incoming_server="imap.example.test",
        outgoing_server="smtp.example.test",
        incoming_auth="profile-credentials",
        incoming_username="svc-in",
        incoming_password=INCOMING_SECRET,
        use_same_settings_for_outgoing=False,
        outgoing_auth="profile-credentials",
        outgoing_username="svc-out",
        outgoing_password=OUTGOING_SECRET,
    )
    assert_no_secret(sysadmin_client.post("/serverprofiles/new/", data, follow=True))
    profile = EmailServerProfile.objects.get(name="Profile credentials")
    forward.refresh_from_db()
    assert forward.get_password() == MAILBOX_SECRET
    assert profile.outgoing_credentials() == ("svc-out", OUTGOING_SECRET)
    user = make_user()
    queue = make_queue()
    stored = (
        forward.password_ciphertext,
        profile.incoming_password_ciphertext,
        profile.outgoing_password_ciphertext,
    )
    return {"forward": forward, "profile": profile, "user": user, "queue": queue, "stored": stored}


def every_page(records):
    return [
        "/mailboxes/",
        "/mailboxes/?view=all",
        "/mailboxes/?view=forward&q=fwd",
        "/mailboxes/new-forward/",
        f"/mailboxes/{records['forward'].pk}/",
        f"/mailboxes/{records['user'].mailbox.pk}/",
        "/serverprofiles/",
        "/serverprofiles/new/",
        f"/serverprofiles/{records['profile'].pk}/",
        f"/serverprofiles/{records['profile'].pk}/delete/",
        "/users/",
        "/users/new/",
        f"/users/{records['user'].pk}/",
        "/queues/",
        "/queues/new/",
        f"/queues/{records['queue'].pk}/",
        "/settings/email/",
    ]


def test_no_page_shows_a_stored_password(sysadmin_client, configured):
    for url in every_page(configured):
        response = sysadmin_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response, configured["stored"])


def test_no_rejected_form_shows_the_password_it_was_sent(sysadmin_client, configured):
    """A form re-rendered with errors (or a refused stale save) does not echo passwords."""
    forward, profile = configured["forward"], configured["profile"]
    for url in every_page(configured):
        if "?" in url or "delete" in url or url in ("/mailboxes/", "/serverprofiles/", "/users/", "/queues/"):
            continue
        data = {
            "name": "",
            "email": "not-an-address",
            "version": "1",
            "password": MAILBOX_SECRET,
            "incoming_password": INCOMING_SECRET,
            "outgoing_password": OUTGOING_SECRET,
        }
        response = sysadmin_client.post(url, data, follow=True)
        assert response.status_code in (200, 409), url
        assert_no_secret(response, configured["stored"])
    # A stale save with a new password: refused, and the password is not shown back.
    url = f"/mailboxes/{forward.pk}/"
    data = page_form_data(sysadmin_client, url, password="Another-Plaintext-99")
    Mailbox.objects.filter(pk=forward.pk).update(version=50)
    response = sysadmin_client.post(url, data)
    assert response.status_code == 409
    assert "Another-Plaintext-99" not in response.content.decode()
    assert_no_secret(response, configured["stored"])
    profile.refresh_from_db()
    assert profile.get_incoming_password() == INCOMING_SECRET

"""Names, addresses, descriptions, alerts and errors holding markup are shown escaped on
every page that shows them: our pages, the admin's lists, forms, history and delete
confirmations, and the messages after a save.

Two payloads: a script element, and an attribute breakout (`">` then an element with an
event handler). Email addresses carry them in a quoted local part, which is a valid
address ("<script>alert(1)</script>"@example.test).
"""

import html

import pytest
from django.utils.html import escape

from mailboxes.models import Mailbox, MailboxAlert
from mailboxes.services.mailboxes import mailbox_save
from mailboxes.services.queues import queue_create
from serverprofiles.models import EmailServerProfile
from tests.fixtures.ui import page_form_data

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, BREAKOUT)
SCRIPT_ADDRESS = f'"{SCRIPT}"@example.test'
IMG_ADDRESS = '"<img/src=x/onerror=alert(1)>"@example.test'


def assert_escaped(body: str, *shown: str) -> None:
    """No payload appears as markup; each of `shown` appears, escaped."""
    for raw in (*PAYLOADS, "<img/src=x/onerror=alert(1)>"):
        assert raw not in body, f"{raw!r} appears unescaped"
    for text in shown:
        assert escape(text) in body, f"{text!r} is not shown (escaped)"


@pytest.fixture
def marked_up(make_profile, make_user, make_forward_mailbox, make_email, sysadmin):
    """One record of each kind, every free-text value carrying a payload."""
    profile = make_profile(name=f"Profile {SCRIPT}", description=BREAKOUT)
    user = make_user("mallory", full_name=f"Mallory {SCRIPT}{BREAKOUT}", email=SCRIPT_ADDRESS)
    queue = queue_create(name=f"Queue {SCRIPT}", email=IMG_ADDRESS, owner=user, description=BREAKOUT)
    forward = make_forward_mailbox(
        name=f"Forward {BREAKOUT}", email='"fwd<b>"@example.test', server_profile=profile
    )
    mailbox = user.mailbox
    mailbox.server_profile = profile
    mailbox = mailbox_save(mailbox, actor=sysadmin)  # a history entry whose text has the payload
    Mailbox.objects.filter(pk=forward.pk).update(incoming_error=f"Server error: the server said {SCRIPT}")
    MailboxAlert.objects.create(
        mailbox=forward,
        severity=MailboxAlert.Severity.ERROR,
        workload="incoming",
        message=f"Server error: the server said {BREAKOUT}",
    )
    MailboxAlert.objects.create(
        profile=profile, severity=MailboxAlert.Severity.WARNING, message=f"Slow {SCRIPT}"
    )
    email = make_email(
        mailbox,
        subject=f"Subject {SCRIPT}",
        from_address=f'"{BREAKOUT}" <mallory@example.test>',
        text=f"Text {SCRIPT}",
        attachments=[(f"file{BREAKOUT}.txt", "text/plain", b"x")],
        forward_mailbox=forward,
    )
    return {
        "profile": profile,
        "user": user,
        "queue": queue,
        "forward": forward,
        "mailbox": mailbox,
        "email": email,
    }


def pages(records) -> list[tuple[str, tuple[str, ...]]]:
    """(address, what it must show) for every page that shows the records."""
    profile, user, queue = records["profile"], records["user"], records["queue"]
    forward, mailbox = records["forward"], records["mailbox"]
    return [
        ("/mailboxes/?view=all", (forward.name, mailbox.name, SCRIPT_ADDRESS, IMG_ADDRESS)),
        (f"/mailboxes/?view=all&q={SCRIPT}", (SCRIPT,)),
        (f"/mailboxes/{forward.pk}/", (forward.name, SCRIPT, BREAKOUT)),  # name, test error, alert
        (f"/mailboxes/{mailbox.pk}/", (mailbox.name, SCRIPT_ADDRESS, profile.name)),
        (f"/mailboxes/{queue.mailbox.pk}/", (queue.name, IMG_ADDRESS)),
        ("/users/", (user.full_name, SCRIPT_ADDRESS)),
        (f"/users/?q={BREAKOUT}", (BREAKOUT,)),
        (f"/users/{user.pk}/", (user.full_name, SCRIPT_ADDRESS)),
        ("/queues/", (queue.name, IMG_ADDRESS)),
        (f"/queues/{queue.pk}/", (queue.name, IMG_ADDRESS, BREAKOUT)),
        ("/serverprofiles/", (profile.name,)),
        (f"/serverprofiles/?q={SCRIPT}", (SCRIPT,)),
        (f"/serverprofiles/{profile.pk}/", (profile.name, BREAKOUT)),
        (f"/serverprofiles/{profile.pk}/delete/", (profile.name,)),
        ("/settings/email/", (profile.name,)),
        ("/admin/", (mailbox.name,)),  # recent actions
        ("/admin/mailboxes/mailbox/", (forward.name, SCRIPT_ADDRESS)),
        (f"/admin/mailboxes/mailbox/?q={SCRIPT}", (SCRIPT,)),
        (f"/admin/mailboxes/mailbox/{forward.pk}/change/", (forward.name, BREAKOUT)),
        (f"/admin/mailboxes/mailbox/{mailbox.pk}/history/", (mailbox.name,)),
        (f"/admin/mailboxes/mailbox/{forward.pk}/delete/", (forward.name,)),
        ("/admin/mailboxes/user/", (SCRIPT_ADDRESS,)),
        (f"/admin/mailboxes/user/{user.pk}/change/", (user.full_name, SCRIPT_ADDRESS)),
        ("/admin/mailboxes/queue/", (queue.name,)),
        (f"/admin/mailboxes/queue/{queue.pk}/change/", (queue.name, BREAKOUT)),
        ("/admin/mailboxes/mailboxalert/", (BREAKOUT,)),
        ("/admin/serverprofiles/emailserverprofile/", (profile.name,)),
        (f"/admin/serverprofiles/emailserverprofile/{profile.pk}/change/", (profile.name, BREAKOUT)),
        (f"/admin/serverprofiles/emailserverprofile/{profile.pk}/delete/", (profile.name,)),
        ("/admin/mailboxes/organizationsettings/1/change/", ()),
        ("/emails/", (records["email"].subject, mailbox.name, user.full_name)),
        (f"/emails/?q={SCRIPT}", (SCRIPT,)),
        (f"/emails/?mailbox={mailbox.pk}", (str(mailbox),)),
        (
            f"/emails/{records['email'].pk}/",
            (records["email"].subject, f"Text {SCRIPT}", f"file{BREAKOUT}.txt", forward.name, user.full_name),
        ),
        ("/admin/mailboxes/email/", (records["email"].subject,)),
        (f"/admin/mailboxes/email/{records['email'].pk}/change/", (records["email"].subject,)),
        ("/alerts/", (BREAKOUT, f"Slow {SCRIPT}", forward.name, profile.name)),
        (f"/alerts/?profile={profile.pk}", (profile.name,)),
    ]


def test_every_page_shows_markup_escaped(sysadmin_client, marked_up, org):
    org.default_server_profile = marked_up["profile"]
    org.save()
    for url, shown in pages(marked_up):
        response = sysadmin_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = response.content.decode()
        try:
            assert_escaped(body, *shown)
        except AssertionError as error:
            raise AssertionError(f"{url}: {error}") from None


def test_the_message_after_a_save_shows_the_name_escaped(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    url = f"/mailboxes/{mailbox.pk}/"

    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, name=SCRIPT), follow=True)

    assert_escaped(response.content.decode(), f"The mailbox “{SCRIPT}” was saved.")


def test_the_stale_edit_message_shows_the_name_escaped(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox(name=f"Stale {BREAKOUT}")
    url = f"/mailboxes/{mailbox.pk}/"
    data = page_form_data(sysadmin_client, url, name="Mine")
    mailbox.name = f"Theirs {SCRIPT}"
    mailbox_save(mailbox)

    response = sysadmin_client.post(url, data)

    assert response.status_code == 409
    assert "was changed by someone else" in html.unescape(response.content.decode())
    assert_escaped(response.content.decode(), f"Theirs {SCRIPT}")


def test_the_admin_message_after_a_save_shows_the_name_escaped(sysadmin_client, profile):
    from tests.fixtures.admin import changeform_data

    url = f"/admin/serverprofiles/emailserverprofile/{profile.pk}/change/"
    data = {**changeform_data(sysadmin_client.get(url)), "name": f"Saved {SCRIPT}"}

    response = sysadmin_client.post(url, data, follow=True)

    assert EmailServerProfile.objects.get(pk=profile.pk).name == f"Saved {SCRIPT}"
    assert_escaped(response.content.decode(), f"Saved {SCRIPT}")

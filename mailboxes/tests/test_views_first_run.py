"""First run (issue 16, defect 9): a guide on the mailbox list until every step is done,
and a new default profile offered to the mailboxes that have none."""

import pytest
from django.urls import reverse

from mailboxes.models import Mailbox, OrganizationSettings
from mailboxes.services.first_run import setup_steps
from tests.fixtures.ui import page_form_data, page_messages

pytestmark = pytest.mark.django_db

GIVE = "give-to-mailboxes-without-profile"


def test_a_fresh_installation_shows_every_step_undone(sysadmin, org):
    steps = setup_steps(sysadmin)
    assert [step.title for step in steps] == [
        "Create a server profile",
        "Set the defaults in Email Settings",
        "Add users and queues",
        "Test & Enable",
    ]
    assert not any(step.done for step in steps)


def test_steps_are_ticked_off_and_the_guide_goes_once_all_are_done(sysadmin, org, make_profile, make_user):
    profile = make_profile()
    org.default_server_profile = profile
    org.save()
    alice = make_user()
    assert [step.done for step in setup_steps(sysadmin)] == [True, True, True, False]
    Mailbox.objects.filter(pk=alice.mailbox.pk).update(incoming_status="failure")
    assert setup_steps(sysadmin) == []


def test_the_list_shows_the_guide_with_links(sysadmin_client, org):
    html = sysadmin_client.get("/mailboxes/").content.decode()
    assert "Getting started" in html
    assert f'<a href="{reverse("serverprofiles:new")}">Create a server profile</a>' in html
    assert f'<a href="{reverse("settings:email")}">Set the defaults in Email Settings</a>' in html


@pytest.fixture
def unassigned(make_user, make_queue, make_profile, org):
    """Two mailboxes made before any profile, and a profile that is now the default."""
    mailboxes = [make_user().mailbox, make_queue().mailbox]
    profile = make_profile(name="Main")
    org.default_server_profile = profile
    org.save()
    return profile, mailboxes


def give(client, profile):
    return client.post(reverse("serverprofiles:commands", args=[profile.pk]), {"command": GIVE}, follow=True)


@pytest.mark.parametrize("role", ["manager", "sysadmin"])
def test_the_default_profile_is_given_to_mailboxes_without_one(client, request, role, unassigned):
    profile, mailboxes = unassigned
    client.force_login(request.getfixturevalue(role))
    page = client.get(profile.get_absolute_url()).content.decode()
    assert "Give It to Mailboxes Without a Profile" in page
    without = Mailbox.objects.filter(server_profile__isnull=True).count()  # a queue's owner's too
    response = give(client, profile)
    assert page_messages(response) == [
        f"Server profile “Main” given to the mailboxes that had none: {without} updated."
    ]
    assert not Mailbox.objects.filter(server_profile__isnull=True).exists()
    assert (
        "Give It to Mailboxes Without a Profile"
        not in client.get(profile.get_absolute_url()).content.decode()
    )


def test_read_only_is_neither_offered_nor_allowed_to_give_it(readonly_client, unassigned):
    profile, mailboxes = unassigned
    assert (
        "Give It to Mailboxes Without a Profile"
        not in readonly_client.get(profile.get_absolute_url()).content.decode()
    )
    assert give(readonly_client, profile).status_code == 403
    assert not Mailbox.objects.filter(pk=mailboxes[0].pk, server_profile__isnull=False).exists()


def test_anonymous_is_sent_to_sign_in(client, unassigned):
    profile, _mailboxes = unassigned
    response = client.post(reverse("serverprofiles:commands", args=[profile.pk]), {"command": GIVE})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_not_offered_for_a_profile_that_is_not_the_default(sysadmin_client, unassigned, make_profile):
    other = make_profile(name="Other")
    assert (
        "Give It to Mailboxes Without a Profile"
        not in sysadmin_client.get(other.get_absolute_url()).content.decode()
    )


def test_making_a_profile_the_default_offers_it(sysadmin_client, make_user, make_profile, org):
    make_user()  # a mailbox without a profile
    profile = make_profile(name="Main")
    url = profile.get_absolute_url()
    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, make_default=True), follow=True)
    assert OrganizationSettings.load().default_server_profile == profile
    assert any("Give It to Mailboxes Without a Profile" in message for message in page_messages(response))


def test_read_only_users_are_not_shown_steps_they_cannot_take(readonly_client, org):
    assert "Getting started" not in readonly_client.get("/mailboxes/").content.decode()

"""M8 where the choice is made: Appointments, Contacts, and Tasks offers Server-Side
Synchronization only with a server profile whose servers carry calendars and contacts
(an Exchange type), on the mailbox form and on the email settings page. The drop-down
is a convenience; a value sent anyway is refused by the model's clean()."""

import re

import pytest

from mailboxes.models import OrganizationSettings
from mailboxes.models.choices import M8_MESSAGE
from mailboxes.services.mailboxes import mailbox_save
from mailboxes.services.organization import organization_settings_save
from serverprofiles.models import ServerType
from tests.fixtures.ui import field_block, field_errors, page_form_data

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/settings/email/"


@pytest.fixture
def exchange(make_profile):
    return make_profile(
        name="Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )


@pytest.fixture
def pop3(make_profile):
    return make_profile(
        name="Contoso POP3", server_type=ServerType.POP3_SMTP, incoming_server="pop.example.test"
    )


def option(response, field: str, value: str) -> str:
    """The <option> tag of `value` in `field`'s drop-down."""
    match = re.search(rf'<option value="{value}"[^>]*>', field_block(response, field))
    assert match, f"no option {value!r} in {field!r}"
    return match.group(0)


def offered(response, field: str) -> list[str]:
    options = re.findall(r'<option value="([^"]*)"([^>]*)>', field_block(response, field))
    return [value for value, attrs in options if " disabled" not in attrs]


def user_mailbox(make_user, profile, **fields):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    for name, value in fields.items():
        setattr(mailbox, name, value)
    return mailbox_save(mailbox)


@pytest.mark.parametrize("profile_name", ["profile", "pop3"])
def test_a_pop3_or_imap_profile_is_not_offered_server_side_synchronization_for_appointments(
    request, sysadmin_client, make_user, profile_name
):
    mailbox = user_mailbox(make_user, request.getfixturevalue(profile_name))
    response = sysadmin_client.get(mailbox.get_absolute_url())
    assert offered(response, "act_method") == ["none", "outlook"]
    assert "hidden" in option(response, "act_method", "server-side-sync")


def test_an_exchange_profile_is_offered_server_side_synchronization_for_appointments(
    sysadmin_client, make_user, exchange
):
    mailbox = user_mailbox(make_user, exchange)
    response = sysadmin_client.get(mailbox.get_absolute_url())
    assert offered(response, "act_method") == ["none", "outlook", "server-side-sync"]


def test_a_mailbox_without_a_profile_is_offered_every_method(sysadmin_client, make_user):
    mailbox = make_user().mailbox
    response = sysadmin_client.get(mailbox.get_absolute_url())
    assert offered(response, "act_method") == ["none", "outlook", "server-side-sync"]


def test_the_page_tells_its_script_which_profiles_carry_calendars(
    sysadmin_client, make_user, profile, exchange
):
    mailbox = user_mailbox(make_user, profile)
    response = sysadmin_client.get(mailbox.get_absolute_url())
    assert 'data-calendars="false"' in option(response, "server_profile", str(profile.pk))
    assert 'data-calendars="true"' in option(response, "server_profile", str(exchange.pk))
    assert 'data-profile-field="server_profile"' in field_block(response, "act_method")
    assert "mailboxadmin/act_method.js" in response.content.decode()


def test_a_crafted_post_is_refused_and_the_chosen_profile_decides_what_is_offered(
    sysadmin_client, make_user, profile, exchange
):
    mailbox = user_mailbox(make_user, exchange, act_method="server-side-sync")
    data = page_form_data(sysadmin_client, mailbox.get_absolute_url(), server_profile=profile.pk)
    response = sysadmin_client.post(mailbox.get_absolute_url(), data)
    assert field_errors(response, "act_method") == [M8_MESSAGE]
    # The value sent stays shown beside its error; the profile just chosen allows no other.
    assert offered(response, "act_method") == ["none", "outlook", "server-side-sync"]
    assert "selected" in option(response, "act_method", "server-side-sync")
    mailbox.refresh_from_db()
    assert (mailbox.server_profile, mailbox.act_method) == (exchange, "server-side-sync")


def test_choosing_an_exchange_profile_with_server_side_synchronization_is_saved(
    sysadmin_client, make_user, profile, exchange
):
    mailbox = user_mailbox(make_user, profile)
    data = page_form_data(
        sysadmin_client, mailbox.get_absolute_url(), server_profile=exchange.pk, act_method="server-side-sync"
    )
    response = sysadmin_client.post(mailbox.get_absolute_url(), data)
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.server_profile, mailbox.act_method) == (exchange, "server-side-sync")


def test_a_refused_save_with_another_error_offers_what_the_chosen_profile_allows(
    sysadmin_client, make_user, profile, exchange
):
    mailbox = user_mailbox(make_user, exchange)
    data = page_form_data(sysadmin_client, mailbox.get_absolute_url(), server_profile=profile.pk, name="")
    response = sysadmin_client.post(mailbox.get_absolute_url(), data)
    assert response.status_code == 200
    assert offered(response, "act_method") == ["none", "outlook"]


def settings_with(profile, act="none"):
    settings = OrganizationSettings.load()
    settings.default_server_profile, settings.default_act = profile, act
    return organization_settings_save(settings, expected_version=settings.version)


def test_the_settings_default_appointments_follow_the_default_profile(sysadmin_client, profile, exchange):
    settings_with(profile)
    response = sysadmin_client.get(SETTINGS_URL)
    assert offered(response, "default_act") == ["none", "outlook"]
    assert 'data-profile-field="default_server_profile"' in field_block(response, "default_act")
    assert "mailboxadmin/act_method.js" in response.content.decode()

    settings_with(exchange)
    response = sysadmin_client.get(SETTINGS_URL)
    assert offered(response, "default_act") == ["none", "outlook", "server-side-sync"]


def test_a_crafted_settings_post_is_still_refused(sysadmin_client, profile):
    settings_with(profile)
    data = page_form_data(sysadmin_client, SETTINGS_URL, default_act="server-side-sync")
    response = sysadmin_client.post(SETTINGS_URL, data)
    assert field_errors(response, "default_act") == [M8_MESSAGE]
    assert OrganizationSettings.load().default_act == "none"

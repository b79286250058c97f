"""Times in the organisation's time zone, with the zone named (Email Settings: Time Zone)."""

import re
from datetime import UTC, datetime

import pytest

from mailboxes.models import Mailbox, MailboxAlert, OrganizationSettings
from tests.fixtures.ui import field_errors, page_form_data, page_messages

pytestmark = pytest.mark.django_db

URL = "/settings/email/"
WINTER = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
SUMMER = datetime(2026, 7, 4, 16, 30, tzinfo=UTC)


def set_time_zone(name: str) -> None:
    OrganizationSettings.objects.update_or_create(pk=1, defaults={"time_zone": name})


def test_time_zone_is_utc_until_chosen(sysadmin_client, org):
    assert OrganizationSettings.load().time_zone == "UTC"
    html = sysadmin_client.get(URL).content.decode()
    assert '<label for="id_time_zone">Time Zone</label>' in html
    assert '<option value="Europe/Paris">Europe/Paris</option>' in html


def test_a_system_administrator_sets_the_time_zone(sysadmin_client, org):
    response = sysadmin_client.post(
        URL, page_form_data(sysadmin_client, URL, time_zone="Europe/Paris"), follow=True
    )
    assert page_messages(response) == ["The email settings were saved."]
    assert OrganizationSettings.load().time_zone == "Europe/Paris"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", "", "Europe/paris"])
def test_a_name_that_is_no_iana_time_zone_is_refused(sysadmin_client, org, name):
    response = sysadmin_client.post(URL, page_form_data(sysadmin_client, URL, time_zone=name))
    assert field_errors(response, "time_zone")
    assert OrganizationSettings.load().time_zone == "UTC"


def test_the_model_refuses_an_unknown_time_zone(org):
    from django.core.exceptions import ValidationError

    settings = OrganizationSettings.load()
    settings.time_zone = "Atlantis/Capital"
    with pytest.raises(ValidationError) as raised:
        settings.full_clean()
    assert raised.value.message_dict["time_zone"] == [
        "“Atlantis/Capital” is not a time zone name: use an IANA name such as Europe/Paris or UTC."
    ]


@pytest.mark.parametrize("role_client", ["manager_client", "readonly_client"])
def test_only_who_may_change_the_settings_changes_the_time_zone(request, role_client, org):
    client = request.getfixturevalue(role_client)
    html = client.get(URL).content.decode()
    assert re.search(r'<select name="time_zone"[^>]* disabled', html)
    data = page_form_data(client, URL, time_zone="Europe/Paris")
    assert client.post(URL, data).status_code == 403
    assert OrganizationSettings.load().time_zone == "UTC"


def stamped(make_user, when) -> Mailbox:
    mailbox = make_user().mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(test_completed_on=when)
    alert = MailboxAlert.objects.create(mailbox=mailbox, severity="error", message="Connection refused.")
    MailboxAlert.objects.filter(pk=alert.pk).update(created_on=when)  # created_on is auto_now_add
    return mailbox


def test_times_are_shown_in_the_organisations_zone_with_its_name(sysadmin_client, make_user, org):
    mailbox = stamped(make_user, WINTER)
    set_time_zone("Europe/Paris")
    html = sysadmin_client.get(f"/mailboxes/{mailbox.pk}/").content.decode()
    assert 'value="4 Dec 2026 17:30 CET"' in html  # Mailbox Test Completed On
    assert "<td>4 Dec 2026 17:30 CET</td>" in html  # the alert
    Mailbox.objects.filter(pk=mailbox.pk).update(test_completed_on=SUMMER)
    assert (
        'value="4 Jul 2026 18:30 CEST"' in sysadmin_client.get(f"/mailboxes/{mailbox.pk}/").content.decode()
    )


def test_times_are_utc_by_default(sysadmin_client, make_user, org):
    mailbox = stamped(make_user, WINTER)
    assert 'value="4 Dec 2026 16:30 UTC"' in sysadmin_client.get(f"/mailboxes/{mailbox.pk}/").content.decode()


def test_the_zone_is_read_only_where_a_time_is_shown(sysadmin_client, django_assert_num_queries, org):
    # 1. the session; 2. the signed-in user; 3-4. their own and group permissions;
    # 5. the page of mailboxes; 6. the first-run guide (the email settings row with five
    # EXISTS). No query for the time zone: the list shows no time.
    with django_assert_num_queries(6):
        sysadmin_client.get("/mailboxes/", {"view": "all"})


# Dates at the calendar's edge ----------------------------------------------------------

YEAR_RANGE = "Enter a date between the years 2 and 9998."


def test_a_date_past_the_year_range_is_refused_on_the_profile_form(sysadmin_client, profile, org):
    # 9999-12-31 23:59 in New York is past the last moment a datetime holds once in UTC.
    set_time_zone("America/New_York")
    url = f"/serverprofiles/{profile.pk}/"
    response = sysadmin_client.post(
        url, page_form_data(sysadmin_client, url, process_email_from="9999-12-31T23:59")
    )
    assert response.status_code == 200
    assert field_errors(response, "process_email_from") == [YEAR_RANGE]
    profile.refresh_from_db()
    assert profile.process_email_from is None


def test_a_date_past_the_year_range_is_refused_on_the_mailbox_form(
    sysadmin_client, make_forward_mailbox, org
):
    set_time_zone("America/New_York")
    mailbox = make_forward_mailbox()
    url = f"/mailboxes/{mailbox.pk}/"
    response = sysadmin_client.post(
        url, page_form_data(sysadmin_client, url, process_email_after="9999-12-31T23:59")
    )
    assert response.status_code == 200
    assert field_errors(response, "process_email_after") == [YEAR_RANGE]
    assert Mailbox.objects.get(pk=mailbox.pk).process_email_after is None


def test_the_last_day_of_the_year_range_is_saved_and_shown_again(sysadmin_client, make_forward_mailbox, org):
    set_time_zone("America/New_York")
    mailbox = make_forward_mailbox()
    url = f"/mailboxes/{mailbox.pk}/"
    response = sysadmin_client.post(
        url, page_form_data(sysadmin_client, url, process_email_after="9998-12-31T23:59")
    )
    assert response.status_code == 302
    assert Mailbox.objects.get(pk=mailbox.pk).process_email_after == datetime(9999, 1, 1, 4, 59, tzinfo=UTC)
    assert 'value="9998-12-31T23:59"' in sysadmin_client.get(url).content.decode()

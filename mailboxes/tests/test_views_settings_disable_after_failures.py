"""Email Settings: Disable Mailbox After Failures (SPEC section 8), in the page and the admin."""

import pytest
from django.contrib.admin.models import LogEntry

from mailboxes.models import OrganizationSettings
from tests.fixtures.admin import changeform_data
from tests.fixtures.ui import field_errors, page_form_data, page_messages

pytestmark = pytest.mark.django_db

URL = "/settings/email/"
ADMIN_URL = "/admin/mailboxes/organizationsettings/1/change/"


def test_the_field_is_on_the_page_with_its_help(sysadmin_client, org):
    html = sysadmin_client.get(URL).content.decode()
    assert "<h2" in html and "Mail Processing</h2>" in html
    assert '<label for="id_disable_after_failures">Disable Mailbox After Failures</label>' in html
    assert "Consecutive failures of mail processing after which a mailbox is disabled" in html
    assert 'name="disable_after_failures" value="10"' in html


def test_a_system_administrator_changes_it_with_history(sysadmin_client, sysadmin, org):
    response = sysadmin_client.post(
        URL, page_form_data(sysadmin_client, URL, disable_after_failures="25"), follow=True
    )

    assert page_messages(response) == ["The email settings were saved."]
    assert OrganizationSettings.load().disable_after_failures == 25
    entry = LogEntry.objects.filter(user=sysadmin).latest("action_time")
    assert "Disable Mailbox After Failures" in entry.get_change_message()


@pytest.mark.parametrize("value", ["0", "1001", "-3", "ten", "", "2.5"])
def test_values_outside_1_to_1000_are_refused(sysadmin_client, org, value):
    response = sysadmin_client.post(URL, page_form_data(sysadmin_client, URL, disable_after_failures=value))
    assert response.status_code == 200
    assert field_errors(response, "disable_after_failures")
    assert OrganizationSettings.load().disable_after_failures == 10


@pytest.mark.parametrize("value", ["1", "1000"])
def test_the_bounds_are_accepted(sysadmin_client, org, value):
    sysadmin_client.post(URL, page_form_data(sysadmin_client, URL, disable_after_failures=value))
    assert OrganizationSettings.load().disable_after_failures == int(value)


@pytest.mark.parametrize("role_client", ["manager_client", "readonly_client"])
def test_other_roles_cannot_change_it(request, role_client, org):
    client = request.getfixturevalue(role_client)
    data = page_form_data(client, URL, disable_after_failures="3")
    assert client.post(URL, data).status_code == 403
    assert OrganizationSettings.load().disable_after_failures == 10


def test_the_admin_changes_it_through_the_service(sysadmin_client, org):
    html = sysadmin_client.get(ADMIN_URL).content.decode()
    assert 'name="disable_after_failures"' in html
    data = changeform_data(sysadmin_client.get(ADMIN_URL))
    data["disable_after_failures"] = "7"

    response = sysadmin_client.post(ADMIN_URL, data)

    assert response.status_code == 302
    settings = OrganizationSettings.load()
    assert (settings.disable_after_failures, settings.version) == (7, 2)

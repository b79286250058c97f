"""The mailbox form (/mailboxes/<id>/) and New Forward Mailbox (/mailboxes/new-forward/)."""

import re

import pytest
from django.contrib.admin.models import LogEntry

from mailboxes.models import ApprovalStatus, Mailbox, choices
from mailboxes.models.mailboxes import M6_MESSAGE, M15_WARNING
from mailboxes.services.mailboxes import forward_mailbox_create
from serverprofiles.models import AuthenticationMethod, ServerType
from tests.fixtures.ui import field_block, field_errors, page_form_data, page_messages

pytestmark = pytest.mark.django_db

LABELS = {
    "name": "Name",
    "owner": "Owner",
    "email": "Email address",
    "delete_after_processing": "Delete Emails After Processing",
    "regarding": "Regarding",
    "is_forward": "Is Forward Mailbox",
    "allow_credentials": "Allow to Use Credentials for Email Processing",
    "username": "User Name",
    "password": "Password",
    "server_profile": "Server Profile",
    "incoming_method": "Incoming Email",
    "outgoing_method": "Outgoing Email",
    "act_method": "Appointments, Contacts, and Tasks",
    "process_email_after": "Process Email Received After",
    "incoming_status": "Incoming Email Status",
    "outgoing_status": "Outgoing Email Status",
    "act_status": "Appointments, Contacts, and Tasks Status",
    "test_completed_on": "Mailbox Test Completed On",
}
SECTIONS = ["General", "Credentials", "Synchronization Method", "Configuration Test Results"]


def url(mailbox) -> str:
    return f"/mailboxes/{mailbox.pk}/"


def headings(response) -> list[str]:
    return re.findall(r"<h2[^>]*>(.*?)</h2>", response.content.decode())


@pytest.fixture
def user_profile(make_profile):
    """A profile whose mailboxes bring their own credentials."""
    return make_profile(name="User credentials IMAP", incoming_auth=AuthenticationMethod.USER_CREDENTIALS)


@pytest.fixture
def profile_credentials(make_profile):
    """A profile that signs in with its own credentials (mailboxes may not bring theirs)."""
    return make_profile(
        name="Profile credentials IMAP",
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="service",
        password="Profile-Secret-1",
    )


@pytest.fixture
def exchange(make_profile):
    return make_profile(
        name="Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )


# The contract ---------------------------------------------------------------------


@pytest.mark.parametrize("page", ["edit", "new"])
def test_every_input_has_its_spec_label_and_the_four_sections(sysadmin_client, make_forward_mailbox, page):
    target = url(make_forward_mailbox()) if page == "edit" else "/mailboxes/new-forward/"
    response = sysadmin_client.get(target)
    html = response.content.decode()
    for name, label in LABELS.items():
        assert f'<label for="id_{name}">{label}</label>' in html
        assert f'id="id_{name}"' in html
    # After the form, a saved mailbox's Mail Processing (SPEC section 8).
    assert headings(response) == SECTIONS + (["Mail Processing"] if page == "edit" else [])
    assert (
        '<button type="submit" form="mailbox-form" name="save" class="btn btn--primary">Save</button>' in html
    )
    assert ">Save &amp; Close</button>" in html


def test_every_field_explains_itself_in_a_sentence(sysadmin_client, make_forward_mailbox):
    response = sysadmin_client.get(url(make_forward_mailbox()))
    for name in LABELS:
        assert 'class="field__help"' in field_block(response, name), name


def test_regarding_and_is_forward_are_shown_but_not_editable(sysadmin_client, make_user):
    user = make_user(full_name="Alice Example")
    response = sysadmin_client.get(url(user.mailbox))
    assert re.search(
        r'<input type="text" name="regarding" value="Alice Example" disabled', response.content.decode()
    )
    assert re.search(r'name="is_forward" value="No" disabled', response.content.decode())


def test_posting_read_only_fields_changes_nothing(sysadmin_client, make_user, make_forward_mailbox):
    """M1, M2: the kind and Regarding are fixed at creation, whatever a request says."""
    user = make_user()
    forward = make_forward_mailbox()
    data = page_form_data(sysadmin_client, url(forward), regarding=str(user.pk), is_forward="No", kind="user")
    sysadmin_client.post(url(forward), data)
    forward.refresh_from_db()
    assert forward.kind == Mailbox.Kind.FORWARD
    assert forward.user_id is None


# Save and Save & Close -------------------------------------------------------------


def test_save_stays_on_the_form_with_a_message(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    data = page_form_data(sysadmin_client, url(mailbox), name="Collection box", save="")
    response = sysadmin_client.post(url(mailbox), data, follow=True)
    assert response.redirect_chain == [(url(mailbox), 302)]
    assert page_messages(response) == ["The mailbox “Collection box” was saved."]
    mailbox.refresh_from_db()
    assert mailbox.name == "Collection box"
    assert mailbox.version == 2


def test_save_and_close_returns_to_the_list(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    data = page_form_data(sysadmin_client, url(mailbox), name="Collection box", save_close="")
    response = sysadmin_client.post(url(mailbox), data, follow=True)
    assert response.redirect_chain == [("/mailboxes/", 302)]
    assert "The mailbox “Collection box” was saved." in page_messages(response)


def test_saving_writes_history_through_the_service(sysadmin_client, sysadmin, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), name="Renamed"))
    entry = LogEntry.objects.filter(object_id=str(mailbox.pk), user=sysadmin).latest("action_time")
    assert "Name" in entry.change_message


def test_changing_a_user_mailboxs_address_changes_the_users_address(sysadmin_client, make_user, org):
    """M12 and M13: one address; a new address needs approval again."""
    user = make_user(email="old@example.test")
    mailbox = user.mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(
        approval_status=ApprovalStatus.APPROVED, incoming_status=choices.TestStatus.SUCCESS
    )
    data = page_form_data(sysadmin_client, url(mailbox), email="new@example.test")
    sysadmin_client.post(url(mailbox), data)
    user.refresh_from_db()
    mailbox.refresh_from_db()
    assert user.email == "new@example.test"
    assert mailbox.approval_status == ApprovalStatus.PENDING
    assert mailbox.incoming_status == choices.TestStatus.NOT_RUN


# New Forward Mailbox ---------------------------------------------------------------


def test_new_forward_mailbox_is_created_with_the_creator_as_owner(sysadmin_client, sysadmin, profile):
    data = page_form_data(
        sysadmin_client,
        "/mailboxes/new-forward/",
        name="Forward box",
        email="fwd@example.test",
        server_profile=profile.pk,
        save="",
    )
    response = sysadmin_client.post("/mailboxes/new-forward/", data, follow=True)
    mailbox = Mailbox.objects.get(email="fwd@example.test")
    assert response.redirect_chain == [(url(mailbox), 302)]
    assert page_messages(response) == ["The forward mailbox “Forward box” was created."]
    assert mailbox.kind == Mailbox.Kind.FORWARD
    assert mailbox.owner == sysadmin
    assert mailbox.approval_status == ApprovalStatus.EMPTY


def test_new_forward_mailbox_starts_from_the_organisation_defaults(sysadmin_client, profile, org):
    org.default_server_profile = profile
    org.save()
    response = sysadmin_client.get("/mailboxes/new-forward/")
    form = response.context["form"]
    assert form["server_profile"].value() == profile.pk
    assert form["incoming_method"].value() == "server-side-sync"
    assert form["outgoing_method"].value() == "none"


def test_new_forward_mailbox_save_and_close_returns_to_the_list(sysadmin_client, profile):
    data = page_form_data(
        sysadmin_client,
        "/mailboxes/new-forward/",
        name="Forward box",
        email="fwd@example.test",
        server_profile=profile.pk,
        save_close="",
    )
    response = sysadmin_client.post("/mailboxes/new-forward/", data)
    assert response.status_code == 302
    assert response.headers["Location"] == "/mailboxes/"


# Rules: each shows its message next to its field, and nothing is saved --------------

FORWARD_RULES = [
    # (rule, changes, field, message)
    (
        "M3",
        {"outgoing_method": "server-side-sync"},
        "outgoing_method",
        "A forward mailbox's Outgoing Email must be None.",
    ),
    (
        "M4",
        {"incoming_method": "forward-mailbox"},
        "incoming_method",
        "A forward mailbox's Incoming Email must be None or Server-Side Synchronization or Email Router.",
    ),
    (
        "M4",
        {"act_method": "outlook"},
        "act_method",
        "A forward mailbox's Appointments, Contacts, and Tasks must be None.",
    ),
    ("M5", {"server_profile": ""}, "server_profile", "A forward mailbox must have a server profile."),
]


@pytest.mark.parametrize(("rule", "changes", "field", "message"), FORWARD_RULES)
def test_forward_mailbox_rules_on_new_forward_mailbox(
    sysadmin_client, profile, rule, changes, field, message
):
    values = {"name": "Forward box", "email": "fwd@example.test", "server_profile": profile.pk, **changes}
    data = page_form_data(sysadmin_client, "/mailboxes/new-forward/", **values)
    response = sysadmin_client.post("/mailboxes/new-forward/", data)
    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    assert not Mailbox.objects.filter(email="fwd@example.test").exists()


@pytest.mark.parametrize(("rule", "changes", "field", "message"), FORWARD_RULES)
def test_forward_mailbox_rules_on_the_mailbox_form(
    sysadmin_client, make_forward_mailbox, rule, changes, field, message
):
    mailbox = make_forward_mailbox()
    response = sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), **changes))
    assert field_errors(response, field) == [message]
    assert Mailbox.objects.get(pk=mailbox.pk).version == 1


def test_user_mailbox_cannot_delete_emails_after_processing(sysadmin_client, make_user):
    """M6, with the SPEC's exact words."""
    mailbox = make_user().mailbox
    data = page_form_data(sysadmin_client, url(mailbox), delete_after_processing=True)
    response = sysadmin_client.post(url(mailbox), data)
    assert field_errors(response, "delete_after_processing") == [M6_MESSAGE]
    mailbox.refresh_from_db()
    assert mailbox.delete_after_processing is False


def test_queue_mailbox_may_delete_emails_after_processing(sysadmin_client, make_queue):
    mailbox = make_queue().mailbox
    data = page_form_data(sysadmin_client, url(mailbox), delete_after_processing=True)
    sysadmin_client.post(url(mailbox), data)
    mailbox.refresh_from_db()
    assert mailbox.delete_after_processing is True


def test_credentials_need_a_profile_that_takes_them(
    sysadmin_client, make_forward_mailbox, profile_credentials
):
    """M7: only with "Credentials Specified by a User or Queue"."""
    mailbox = make_forward_mailbox(server_profile=profile_credentials)
    data = page_form_data(
        sysadmin_client, url(mailbox), allow_credentials=True, username="fwd", password="Mailbox-Secret-7"
    )
    response = sysadmin_client.post(url(mailbox), data)
    assert field_errors(response, "allow_credentials") == [
        "Allow to Use Credentials for Email Processing can be Yes only when the server profile "
        'uses "Credentials Specified by a User or Queue".'
    ]
    mailbox.refresh_from_db()
    assert not mailbox.allow_credentials
    assert not mailbox.has_password


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("username", "Enter the user name, or set Allow to Use Credentials to No."),
        ("password", "Enter the password, or set Allow to Use Credentials to No."),
    ],
)
def test_credentials_need_user_name_and_password(
    sysadmin_client, make_forward_mailbox, user_profile, missing, message
):
    """M7: then User Name and Password are both required."""
    mailbox = make_forward_mailbox(server_profile=user_profile)
    values = {"allow_credentials": True, "username": "fwd", "password": "Mailbox-Secret-7", missing: None}
    response = sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), **values))
    assert field_errors(response, missing) == [message]
    mailbox.refresh_from_db()
    assert not mailbox.allow_credentials


def test_appointments_need_an_exchange_profile(sysadmin_client, make_user, profile):
    """M8."""
    mailbox = make_user().mailbox
    data = page_form_data(
        sysadmin_client, url(mailbox), server_profile=profile.pk, act_method="server-side-sync"
    )
    response = sysadmin_client.post(url(mailbox), data)
    assert field_errors(response, "act_method") == [
        "Appointments, Contacts, and Tasks cannot use Server-Side Synchronization with a POP3/SMTP "
        "or IMAP/SMTP server profile: those servers carry no calendars or contacts."
    ]


def test_appointments_with_an_exchange_profile_are_accepted(sysadmin_client, make_user, exchange):
    mailbox = make_user().mailbox
    data = page_form_data(
        sysadmin_client, url(mailbox), server_profile=exchange.pk, act_method="server-side-sync"
    )
    sysadmin_client.post(url(mailbox), data)
    mailbox.refresh_from_db()
    assert mailbox.act_method == "server-side-sync"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        # M9 (it also covers M10 for queues: Outlook is not among a queue's choices).
        (
            {"incoming_method": "outlook"},
            "incoming_method",
            "A queue mailbox's Incoming Email must be None, Server-Side Synchronization or Email "
            "Router, or Forward Mailbox.",
        ),
        (
            {"outgoing_method": "outlook"},
            "outgoing_method",
            "A queue mailbox's Outgoing Email must be None or Server-Side Synchronization or Email Router.",
        ),
        (
            {"act_method": "outlook"},
            "act_method",
            "A queue mailbox's Appointments, Contacts, and Tasks must be None.",
        ),
    ],
)
def test_queue_mailbox_methods(sysadmin_client, make_queue, changes, field, message):
    mailbox = make_queue().mailbox
    response = sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), **changes))
    assert field_errors(response, field) == [message]
    assert Mailbox.objects.get(pk=mailbox.pk).version == 1


def test_user_mailbox_may_use_outlook(sysadmin_client, make_user):
    """M10: the Outlook methods exist for user mailboxes."""
    mailbox = make_user().mailbox
    data = page_form_data(sysadmin_client, url(mailbox), incoming_method="outlook", outgoing_method="outlook")
    sysadmin_client.post(url(mailbox), data)
    mailbox.refresh_from_db()
    assert (mailbox.incoming_method, mailbox.outgoing_method) == ("outlook", "outlook")


def test_email_address_is_unique_ignoring_case(sysadmin_client, make_user, make_forward_mailbox):
    """M11."""
    make_forward_mailbox(email="shared@example.test")
    mailbox = make_user().mailbox
    response = sysadmin_client.post(
        url(mailbox), page_form_data(sysadmin_client, url(mailbox), email="Shared@Example.test")
    )
    assert field_errors(response, "email") == ["Another mailbox already uses this email address."]


def test_email_address_must_be_valid(sysadmin_client, make_user):
    mailbox = make_user().mailbox
    response = sysadmin_client.post(
        url(mailbox), page_form_data(sysadmin_client, url(mailbox), email="not-an-address")
    )
    assert field_errors(response, "email") == ["Enter a valid email address."]


def test_forward_mailbox_incoming_needs_a_forward_mailbox(sysadmin_client, make_user, profile):
    """M14."""
    mailbox = make_user().mailbox
    data = page_form_data(
        sysadmin_client, url(mailbox), server_profile=profile.pk, incoming_method="forward-mailbox"
    )
    response = sysadmin_client.post(url(mailbox), data)
    assert field_errors(response, "incoming_method") == [
        "Incoming Email = Forward Mailbox needs an active forward mailbox that has a server profile; "
        "create one with New Forward Mailbox first."
    ]


def test_forward_mailbox_incoming_accepted_with_an_active_forward_mailbox(
    sysadmin_client, make_user, make_forward_mailbox, profile
):
    make_forward_mailbox()
    mailbox = make_user().mailbox
    data = page_form_data(
        sysadmin_client, url(mailbox), server_profile=profile.pk, incoming_method="forward-mailbox"
    )
    sysadmin_client.post(url(mailbox), data)
    mailbox.refresh_from_db()
    assert mailbox.incoming_method == "forward-mailbox"


def test_name_is_required(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    response = sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), name=""))
    assert field_errors(response, "name") == ["This field is required."]


def test_unprocessed_mailbox_is_saved_with_the_warning(sysadmin_client, make_user):
    """M15: may be saved, and says it will not be processed."""
    mailbox = make_user().mailbox
    data = page_form_data(
        sysadmin_client, url(mailbox), server_profile="", incoming_method="server-side-sync"
    )
    response = sysadmin_client.post(url(mailbox), data, follow=True)
    assert page_messages(response) == [f"The mailbox “{mailbox.name}” was saved."]
    assert M15_WARNING in response.content.decode()


# Write-only password -----------------------------------------------------------------


def test_password_is_set_encrypted_and_never_shown(sysadmin_client, make_forward_mailbox, user_profile):
    mailbox = make_forward_mailbox(server_profile=user_profile)
    data = page_form_data(
        sysadmin_client, url(mailbox), allow_credentials=True, username="fwd", password="Mailbox-Secret-7"
    )
    response = sysadmin_client.post(url(mailbox), data, follow=True)
    mailbox.refresh_from_db()
    assert mailbox.get_password() == "Mailbox-Secret-7"
    assert "Mailbox-Secret-7" not in mailbox.password_ciphertext
    html = response.content.decode()
    assert "Mailbox-Secret-7" not in html
    assert re.search(r'<input type="password" name="password"(?![^>]*value=)', html)
    assert "A password is set." in field_block(response, "password")


def test_empty_password_keeps_the_stored_one(sysadmin_client, make_forward_mailbox, user_profile):
    mailbox = make_forward_mailbox(
        server_profile=user_profile, allow_credentials=True, username="fwd", password="Mailbox-Secret-7"
    )
    sysadmin_client.post(url(mailbox), page_form_data(sysadmin_client, url(mailbox), name="Renamed"))
    mailbox.refresh_from_db()
    assert mailbox.name == "Renamed"
    assert mailbox.get_password() == "Mailbox-Secret-7"


def test_clear_password_removes_it(sysadmin_client, make_forward_mailbox, user_profile):
    """Clearing the password of a mailbox that uses credentials: M7 says it is required."""
    mailbox = make_forward_mailbox(
        server_profile=user_profile, allow_credentials=True, username="fwd", password="Mailbox-Secret-7"
    )
    response = sysadmin_client.post(
        url(mailbox), page_form_data(sysadmin_client, url(mailbox), clear_password=True)
    )
    assert field_errors(response, "password") == [
        "Enter the password, or set Allow to Use Credentials to No."
    ]
    data = page_form_data(sysadmin_client, url(mailbox), clear_password=True, allow_credentials=False)
    sysadmin_client.post(url(mailbox), data)
    mailbox.refresh_from_db()
    assert not mailbox.has_password
    assert mailbox.username == ""


def test_new_password_and_clear_together_are_refused(sysadmin_client, make_forward_mailbox, user_profile):
    mailbox = make_forward_mailbox(
        server_profile=user_profile, allow_credentials=True, username="fwd", password="Mailbox-Secret-7"
    )
    data = page_form_data(sysadmin_client, url(mailbox), clear_password=True, password="Other-Secret-8")
    response = sysadmin_client.post(url(mailbox), data)
    assert field_errors(response, "clear_password") == [
        "Enter a new password or clear the stored one, not both."
    ]
    mailbox.refresh_from_db()
    assert mailbox.get_password() == "Mailbox-Secret-7"


def test_profile_options_say_which_take_user_credentials(
    sysadmin_client, make_forward_mailbox, user_profile, profile_credentials
):
    """The page offers the Credentials fields only for such profiles (app.js reads this)."""
    response = sysadmin_client.get(url(make_forward_mailbox()))
    html = response.content.decode()
    assert f'<option value="{user_profile.pk}" data-user-credentials="true" data-calendars="false">' in html
    assert (
        f'<option value="{profile_credentials.pk}" data-user-credentials="false" data-calendars="false">'
        in html
    )
    assert 'data-show-if="{&quot;server_profile.user-credentials&quot;: [&quot;true&quot;]}"' in field_block(
        response, "allow_credentials"
    )


# Stale edit ----------------------------------------------------------------------------


def test_second_of_two_concurrent_edits_is_refused(
    client, django_user_model, sysadmin, manager, make_forward_mailbox
):
    """Two sessions open the same mailbox; both save. The first wins, the second is told."""
    from django.test import Client

    mailbox = make_forward_mailbox(name="Original")
    first, second = Client(), Client()
    first.force_login(sysadmin)
    second.force_login(manager)
    first_data = page_form_data(first, url(mailbox), name="First's name")
    second_data = page_form_data(second, url(mailbox), name="Second's name", delete_after_processing=True)

    assert first.post(url(mailbox), first_data).status_code == 302
    response = second.post(url(mailbox), second_data)

    assert response.status_code == 409
    assert page_messages(response) == [
        f"Mailbox “First's name <{mailbox.email}>” was changed by someone else since you opened it. "
        "Nothing was saved; the form now shows the current values."
    ]
    form = response.context["form"]
    assert not form.is_bound
    assert form["name"].value() == "First's name"
    assert form["version"].value() == 2
    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.delete_after_processing, mailbox.version) == ("First's name", False, 2)
    # Saving again from the refreshed form works.
    again = form_data_of(response, name="Second's name")
    assert second.post(url(mailbox), again).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.name == "Second's name"


def form_data_of(response, **changes):
    from tests.fixtures.ui import form_data

    return form_data(response.context["form"], **changes)


def test_a_forward_mailbox_made_elsewhere_is_edited_normally(sysadmin_client, profile):
    mailbox = forward_mailbox_create(
        name="Made by a command", email="cmd@example.test", server_profile=profile
    )
    response = sysadmin_client.get(url(mailbox))
    assert response.status_code == 200
    assert response.context["form"]["version"].value() == 1


def test_form_shows_the_last_test_errors_and_alerts(sysadmin_client, make_forward_mailbox):
    from mailboxes.models import MailboxAlert

    mailbox = make_forward_mailbox()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=choices.TestStatus.FAILURE, incoming_error="Authentication failed."
    )
    MailboxAlert.objects.create(
        mailbox=mailbox, severity="error", workload="incoming", message="The host name does not resolve."
    )
    response = sysadmin_client.get(url(mailbox))
    html = response.content.decode()
    assert "<strong>Incoming Email:</strong> Authentication failed." in html
    assert "<td>The host name does not resolve.</td>" in html
    assert re.search(r'name="incoming_status" value="Failure" disabled', html)

"""Who may see and change what: every URL and every command, for every role.

Roles (groups from the data migration): System Administrator (everything, approval
included), Mailbox Manager (mailboxes, users, queues, profiles; email settings read-only;
no approval), Read-only (view). Anonymous visitors are sent to sign in; signed-in users
who are not staff are refused everything.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from mailboxes.models import ApprovalStatus, Mailbox

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "not_staff", "readonly", "manager", "sysadmin"]


@pytest.fixture
def records(make_user, make_queue, make_forward_mailbox, profile, make_profile, org):
    user = make_user()
    return {
        "mailbox": make_forward_mailbox(),
        "user_mailbox": user.mailbox,
        "user": user,
        "queue": make_queue(),
        "profile": profile,
        "unused_profile": make_profile(name="Unused"),
    }


@pytest.fixture
def as_role(request, make_user):
    def client_for(role: str) -> Client:
        client = Client()
        if role == "anonymous":
            return client
        if role == "not_staff":
            user = make_user(username="insider")
            user.groups.add(Group.objects.get(name="System Administrator"))
        else:
            user = request.getfixturevalue(role)
        client.force_login(user)
        return client

    return client_for


# page -> the roles that may open it (GET) and the roles that may send it (POST)
PAGES = {
    "/mailboxes/": ("readonly manager sysadmin", ""),
    "/mailboxes/new-forward/": ("manager sysadmin", "manager sysadmin"),
    "/mailboxes/{mailbox}/": ("readonly manager sysadmin", "manager sysadmin"),
    "/mailboxes/{user_mailbox}/": ("readonly manager sysadmin", "manager sysadmin"),
    "/mailboxes/{mailbox}/status/": ("readonly manager sysadmin", ""),
    "/serverprofiles/": ("readonly manager sysadmin", ""),
    "/serverprofiles/new/": ("manager sysadmin", "manager sysadmin"),
    "/serverprofiles/{profile}/": ("readonly manager sysadmin", "manager sysadmin"),
    "/serverprofiles/{unused_profile}/delete/": ("manager sysadmin", "manager sysadmin"),
    "/users/": ("readonly manager sysadmin", ""),
    "/users/new/": ("manager sysadmin", "manager sysadmin"),
    "/users/{user}/": ("readonly manager sysadmin", "manager sysadmin"),
    "/users/autocomplete/": ("readonly manager sysadmin", ""),
    "/queues/": ("readonly manager sysadmin", ""),
    "/queues/new/": ("manager sysadmin", "manager sysadmin"),
    "/queues/{queue}/": ("readonly manager sysadmin", "manager sysadmin"),
    "/settings/email/": ("readonly manager sysadmin", "sysadmin"),
}


def resolve(page: str, records) -> str:
    return page.format(**{name: record.pk for name, record in records.items()})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_who_may_open_each_page(as_role, records, role, page):
    url = resolve(page, records)
    response = as_role(role).get(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response.headers["Location"] == f"/accounts/login/?next={url}"
    elif role in PAGES[page][0].split():
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", [page for page, (_, post) in PAGES.items() if post])
def test_who_may_send_each_form(as_role, records, role, page):
    url = resolve(page, records)
    before = {name: type(r).objects.filter(pk=r.pk).values().first() for name, r in records.items()}
    response = as_role(role).post(url, {"name": "Changed", "version": "1"})
    if role == "anonymous":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")
    elif role in PAGES[page][1].split():
        assert response.status_code in (200, 302, 409)  # accepted (perhaps with field errors)
        return
    else:
        assert response.status_code == 403
    after = {name: type(r).objects.filter(pk=r.pk).values().first() for name, r in records.items()}
    assert after == before


# command -> the roles that may run it
COMMANDS = {
    "apply-defaults": "manager sysadmin",
    "deactivate": "manager sysadmin",
    "activate": "manager sysadmin",
    "approve": "sysadmin",
    "reject": "sysadmin",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("command", COMMANDS)
def test_who_may_run_each_command(as_role, records, role, command):
    mailbox = records["user_mailbox"]
    before = Mailbox.objects.filter(pk=mailbox.pk).values().first()
    response = as_role(role).post("/mailboxes/commands/", {"command": command, "selected": [mailbox.pk]})
    after = Mailbox.objects.filter(pk=mailbox.pk).values().first()
    if role == "anonymous":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")
    elif role in COMMANDS[command].split():
        assert response.status_code == 302
        assert response.headers["Location"] == "/mailboxes/"
        return
    else:
        assert response.status_code == 403
    assert after == before


def test_approve_changes_the_status_only_for_the_system_administrator(as_role, records):
    mailbox = records["user_mailbox"]
    for role in ("readonly", "manager"):
        as_role(role).post("/mailboxes/commands/", {"command": "approve", "selected": [mailbox.pk]})
        assert Mailbox.objects.get(pk=mailbox.pk).approval_status == ApprovalStatus.PENDING
    as_role("sysadmin").post("/mailboxes/commands/", {"command": "approve", "selected": [mailbox.pk]})
    assert Mailbox.objects.get(pk=mailbox.pk).approval_status == ApprovalStatus.APPROVED


def test_commands_are_only_sent_by_post(as_role):
    assert as_role("sysadmin").get("/mailboxes/commands/").status_code == 405


# What each role is offered ---------------------------------------------------------------


@pytest.mark.parametrize(
    "page", ["/mailboxes/{mailbox}/", "/serverprofiles/{profile}/", "/users/{user}/", "/queues/{queue}/"]
)
def test_read_only_sees_a_form_it_cannot_send(as_role, records, page):
    response = as_role("readonly").get(resolve(page, records))
    html = response.content.decode()
    assert ">Save</button>" not in html
    assert "Save &amp; Close" not in html
    assert 'name="command"' not in html
    assert all(field.disabled for field in response.context["form"].fields.values())


def test_read_only_list_offers_no_commands(as_role, records):
    html = as_role("readonly").get("/mailboxes/").content.decode()
    assert "New Forward Mailbox" not in html
    assert 'name="command"' not in html
    assert 'name="selected"' not in html


@pytest.mark.parametrize(
    ("role", "offered", "not_offered"),
    [
        ("manager", ["Apply Default Email Settings", "Deactivate"], ["Approve Email", "Reject Email"]),
        ("sysadmin", ["Approve Email", "Reject Email", "Apply Default Email Settings", "Deactivate"], []),
    ],
)
def test_mailbox_form_offers_the_commands_the_role_may_run(as_role, records, role, offered, not_offered):
    html = as_role(role).get(f"/mailboxes/{records['user_mailbox'].pk}/").content.decode()
    for label in offered:
        assert f'class="btn">{label}</button>' in html
    for label in not_offered:
        assert f'class="btn">{label}</button>' not in html
    assert 'class="btn">Activate</button>' not in html  # the mailbox is active


def test_manager_is_not_offered_email_settings_changes(as_role, records):
    html = as_role("manager").get("/settings/email/").content.decode()
    assert ">Save</button>" not in html


def test_header_shows_the_sections_the_role_may_open(as_role, records):
    html = as_role("readonly").get("/mailboxes/").content.decode()
    for section in ["Mailboxes", "Server Profiles", "Users", "Queues", "Email Settings"]:
        assert f">{section}</a>" in html

"""Roles cannot rise (SPEC 9), and settings only by those who may: every page, admin view
and command that touches users, groups or the default server profile, for every role.

Roles: anonymous, Read-only, Mailbox Manager, System Administrator (tests/fixtures/core.py).
A "System Administrator's account" is a superuser's, or one holding the roles permission
(mailboxes.administer_roles) through the System Administrator group or directly.
"""

import html
import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.test import Client

from mailboxes.models import Mailbox, OrganizationSettings, User
from mailboxes.services.users import user_build, user_delete, user_insert, user_save
from serverprofiles.models import EmailServerProfile
from tests.fixtures.admin import changeform_data, messages_of
from tests.fixtures.ui import page_form_data

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "readonly", "manager", "sysadmin"]
NEW_PASSWORD = "Another-Horse-Battery-41"
ROLE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


def administer_roles() -> Permission:
    return Permission.objects.get(content_type__app_label="mailboxes", codename="administer_roles")


@pytest.fixture
def accounts(make_user):
    """The accounts the roles act on: an ordinary user, and three kinds of System
    Administrator's account."""
    plain = make_user("plain", password="Plain-Horse-Staple-3")
    in_group = make_user("root2", is_staff=True, password="Root-Horse-Staple-3")
    in_group.groups.add(Group.objects.get(name="System Administrator"))
    superuser = make_user("boss", is_staff=True, is_superuser=True, password="Boss-Horse-Staple-3")
    direct = make_user("holder", is_staff=True, password="Holder-Horse-Staple-3")
    direct.user_permissions.add(administer_roles())
    return {"plain": plain, "in_group": in_group, "superuser": superuser, "direct": direct}


SYSTEM_ADMINISTRATORS = ["in_group", "superuser", "direct"]


@pytest.fixture
def as_role(request):
    def client_for(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(request.getfixturevalue(role))
        return client

    return client_for


def row(user: User) -> dict:
    """What the database holds for `user`, roles included."""
    values = User.objects.filter(pk=user.pk).values().first()
    if values is not None:
        values["groups"] = sorted(user.groups.values_list("pk", flat=True))
        values["user_permissions"] = sorted(user.user_permissions.values_list("pk", flat=True))
    return values


def admin_url(path: str, accounts) -> str:
    return path.format(**{name: user.pk for name, user in accounts.items()})


# The Django admin ------------------------------------------------------------------------

# admin view -> the roles that may open it
ADMIN_VIEWS = {
    "/admin/mailboxes/user/": "readonly manager sysadmin",
    "/admin/mailboxes/user/add/": "manager sysadmin",
    "/admin/mailboxes/user/{plain}/change/": "readonly manager sysadmin",
    "/admin/mailboxes/user/{in_group}/change/": "readonly manager sysadmin",  # read-only but for sysadmin
    "/admin/mailboxes/user/{plain}/password/": "sysadmin",
    "/admin/mailboxes/user/{in_group}/password/": "sysadmin",
    "/admin/mailboxes/user/{superuser}/password/": "sysadmin",
    "/admin/mailboxes/user/{plain}/delete/": "manager sysadmin",
    "/admin/mailboxes/user/{in_group}/delete/": "sysadmin",
    "/admin/mailboxes/user/{superuser}/delete/": "sysadmin",
    "/admin/mailboxes/user/{direct}/delete/": "sysadmin",
    "/admin/auth/group/": "sysadmin",
    "/admin/auth/group/add/": "sysadmin",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("view", ADMIN_VIEWS)
def test_who_may_open_each_admin_view_of_users_and_groups(as_role, accounts, role, view):
    url = admin_url(view, accounts)

    response = as_role(role).get(url)

    if role == "anonymous":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login/")
    elif role in ADMIN_VIEWS[view].split():
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(("role", "shown"), [("readonly", False), ("manager", False), ("sysadmin", True)])
def test_admin_user_page_shows_role_fields_only_to_a_system_administrator(as_role, accounts, role, shown):
    response = as_role(role).get(f"/admin/mailboxes/user/{accounts['plain'].pk}/change/")

    page = response.content.decode()
    for field in ROLE_FIELDS:
        assert (f'name="{field}"' in page) is shown, field
    assert ("../password/" in page) is shown


def crafted_change(client, user: User, **changes) -> dict:
    """The admin change form of `user` as a System Administrator would send it, with every
    role field set: what a Manager would craft."""
    data = changeform_data(client.get(f"/admin/mailboxes/user/{user.pk}/change/"))
    data.update(
        is_superuser="on",
        is_staff="on",
        groups=[str(Group.objects.get(name="System Administrator").pk)],
        user_permissions=[str(administer_roles().pk)],
        **changes,
    )
    return data


@pytest.mark.parametrize("role", ["manager", "sysadmin"])
def test_crafted_role_fields_in_the_admin_change_only_for_a_system_administrator(
    as_role, accounts, sysadmin, role
):
    plain = accounts["plain"]
    data = crafted_change(as_role("sysadmin"), plain, full_name="Plain Renamed")

    response = as_role(role).post(f"/admin/mailboxes/user/{plain.pk}/change/", data)

    assert response.status_code == 302
    plain.refresh_from_db()
    assert plain.full_name == "Plain Renamed"
    raised = role == "sysadmin"
    assert plain.is_superuser is raised
    assert plain.is_staff is raised
    assert plain.groups.filter(name="System Administrator").exists() is raised
    assert plain.user_permissions.filter(codename="administer_roles").exists() is raised


@pytest.mark.parametrize("target", SYSTEM_ADMINISTRATORS)
@pytest.mark.parametrize("role", ["readonly", "manager", "sysadmin"])
def test_only_a_system_administrator_changes_a_system_administrators_account_in_the_admin(
    as_role, accounts, role, target
):
    account = accounts[target]
    data = changeform_data(as_role("sysadmin").get(f"/admin/mailboxes/user/{account.pk}/change/"))
    data.pop("is_active")
    data["username"] = "renamed"
    before = row(account)

    response = as_role(role).post(f"/admin/mailboxes/user/{account.pk}/change/", data)

    if role == "sysadmin":
        assert response.status_code == 302
        account.refresh_from_db()
        assert (account.username, account.is_active) == ("renamed", False)
    else:
        assert response.status_code == 403
        assert row(account) == before


def test_a_manager_sees_a_system_administrators_account_read_only_in_the_admin(as_role, accounts):
    response = as_role("manager").get(f"/admin/mailboxes/user/{accounts['in_group'].pk}/change/")

    assert response.context["has_change_permission"] is False
    assert response.context["has_delete_permission"] is False


@pytest.mark.parametrize("role", ["manager", "sysadmin"])
def test_the_admin_add_form_never_makes_a_staff_user_or_superuser(as_role, role):
    response = as_role(role).post(
        "/admin/mailboxes/user/add/",
        {
            "username": "newcomer",
            "full_name": "New Comer",
            "email": "newcomer@example.test",
            "usable_password": "false",
            "is_superuser": "on",
            "is_staff": "on",
            "groups": [str(Group.objects.get(name="System Administrator").pk)],
        },
    )

    assert response.status_code == 302
    newcomer = User.objects.get(username="newcomer")
    assert (newcomer.is_superuser, newcomer.is_staff, newcomer.groups.count()) == (False, False, 0)


@pytest.mark.parametrize(("role", "shown"), [("manager", False), ("sysadmin", True)])
def test_the_admin_add_form_offers_a_password_only_to_a_system_administrator(as_role, role, shown):
    response = as_role(role).get("/admin/mailboxes/user/add/")

    page = response.content.decode()
    for field in ("usable_password", "password1", "password2"):
        assert (f'name="{field}"' in page) is shown, field
    assert ("password1" in response.context["adminform"].form.fields) is shown


@pytest.mark.parametrize(("role", "usable"), [("manager", False), ("sysadmin", True)])
def test_a_password_posted_to_the_admin_add_form_is_set_only_by_a_system_administrator(as_role, role, usable):
    # A Manager who chose the password of an account a System Administrator later
    # promotes could sign in as a System Administrator.
    response = as_role(role).post(
        "/admin/mailboxes/user/add/",
        {
            "username": "newhire",
            "full_name": "New Hire",
            "email": "newhire@example.test",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    newhire = User.objects.get(username="newhire")
    assert newhire.has_usable_password() is usable
    assert newhire.check_password(NEW_PASSWORD) is usable
    assert Mailbox.objects.filter(user=newhire).exists()


@pytest.mark.parametrize(
    ("role", "target"),
    [
        (role, target)
        for role in ROLES
        for target in ("plain", "in_group", "superuser", "self")
        if role != "anonymous" or target != "self"
    ],
)
def test_only_a_system_administrator_sets_a_password_in_the_admin(as_role, accounts, request, role, target):
    # One's own password too: that is changed on Django's password-change page, which asks for the old one.
    account = request.getfixturevalue(role) if target == "self" else accounts[target]
    url = f"/admin/mailboxes/user/{account.pk}/password/"

    response = as_role(role).post(
        url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    )

    account.refresh_from_db()
    if role == "sysadmin":
        assert response.status_code == 302
        assert account.check_password(NEW_PASSWORD)
        return
    assert response.status_code == (302 if role == "anonymous" else 403)
    assert not account.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("role", ["readonly", "manager", "sysadmin"])
def test_everyone_changes_their_own_password_by_giving_the_old_one(as_role, request, role):
    user = request.getfixturevalue(role)
    client = as_role(role)
    change = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    refused = client.post("/accounts/password_change/", {"old_password": "wrong", **change})
    accepted = client.post("/accounts/password_change/", {"old_password": "Correct-Horse-9", **change})

    assert refused.status_code == 200
    assert accepted.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("target", ["plain", *SYSTEM_ADMINISTRATORS])
@pytest.mark.parametrize("role", ["readonly", "manager", "sysadmin"])
def test_who_may_delete_an_account_in_the_admin(as_role, accounts, role, target):
    account = accounts[target]

    response = as_role(role).post(f"/admin/mailboxes/user/{account.pk}/delete/", {"post": "yes"})

    deleted = role == "sysadmin" or (role == "manager" and target == "plain")
    assert response.status_code == (302 if deleted else 403)
    assert User.objects.filter(pk=account.pk).exists() is not deleted


def test_bulk_delete_leaves_system_administrators_accounts_to_a_system_administrator(as_role, accounts):
    selected = [str(user.pk) for user in accounts.values()]
    client = as_role("manager")
    action = {"action": "delete_selected", "_selected_action": selected}

    confirmation = client.post("/admin/mailboxes/user/", action)
    done = client.post("/admin/mailboxes/user/", {**action, "post": "yes"}, follow=True)

    assert "“root2” is a System Administrator's account" in html.unescape(confirmation.content.decode())
    assert set(User.objects.filter(pk__in=selected).values_list("username", flat=True)) == {
        "root2",
        "boss",
        "holder",
    }
    assert messages_of(done)[0].startswith(
        "1 deleted, 3 refused: Boss: “boss” is a System Administrator's account"
    )


def test_bulk_delete_by_a_system_administrator_deletes_every_selected_account(as_role, accounts):
    selected = [str(user.pk) for user in accounts.values()]

    as_role("sysadmin").post(
        "/admin/mailboxes/user/", {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert not User.objects.filter(pk__in=selected).exists()


@pytest.mark.parametrize("role", ROLES)
def test_only_a_system_administrator_adds_a_group(as_role, role):
    response = as_role(role).post(
        "/admin/auth/group/add/", {"name": "Escalated", "permissions": [str(administer_roles().pk)]}
    )

    assert response.status_code == (302 if role in ("anonymous", "sysadmin") else 403)
    assert Group.objects.filter(name="Escalated").exists() is (role == "sysadmin")


def test_a_manager_is_not_offered_the_groups_in_the_admin_index(as_role):
    assert "/admin/auth/group/" not in as_role("manager").get("/admin/").content.decode()
    assert "/admin/auth/group/" in as_role("sysadmin").get("/admin/").content.decode()


# The pages ------------------------------------------------------------------------------

# page -> the roles that may open it
PAGES = {
    "/users/": "readonly manager sysadmin",
    "/users/new/": "manager sysadmin",
    "/users/{plain}/": "readonly manager sysadmin",
    "/users/{in_group}/": "readonly manager sysadmin",
    "/users/{superuser}/": "readonly manager sysadmin",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_who_may_open_each_user_page(as_role, accounts, role, page):
    url = admin_url(page, accounts)

    response = as_role(role).get(url)

    if role == "anonymous":
        assert response.status_code == 302
        assert response.headers["Location"] == f"/accounts/login/?next={url}"
    elif role in PAGES[page].split():
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("target", ["plain", *SYSTEM_ADMINISTRATORS])
@pytest.mark.parametrize("role", ROLES)
def test_who_may_rename_or_deactivate_an_account_on_its_page(as_role, accounts, role, target):
    account = accounts[target]
    url = f"/users/{account.pk}/"
    data = page_form_data(as_role("sysadmin"), url, username="renamed", is_active=False)
    before = row(account)

    response = as_role(role).post(url, data)

    allowed = role == "sysadmin" or (role == "manager" and target == "plain")
    if allowed:
        assert response.status_code == 302
        account.refresh_from_db()
        assert (account.username, account.is_active) == ("renamed", False)
        return
    assert response.status_code == (302 if role == "anonymous" else 403)
    assert row(account) == before


def test_a_manager_sees_a_system_administrators_page_read_only_and_why(as_role, accounts):
    response = as_role("manager").get(f"/users/{accounts['in_group'].pk}/")

    assert response.context["can_change"] is False
    assert all(field.disabled for field in response.context["form"].fields.values())
    assert "This is a System Administrator's account" in response.content.decode()


def test_a_system_administrator_sees_a_system_administrators_page_editable(as_role, accounts):
    response = as_role("sysadmin").get(f"/users/{accounts['in_group'].pk}/")

    assert response.context["can_change"] is True
    assert "This is a System Administrator's account" not in response.content.decode()


def test_new_user_page_ignores_crafted_role_fields(as_role):
    as_role("manager").post(
        "/users/new/",
        {"username": "newcomer", "email": "newcomer@example.test", "is_active": "on", "is_staff": "on"},
    )

    newcomer = User.objects.get(username="newcomer")
    assert (newcomer.is_staff, newcomer.is_superuser) == (False, False)


@pytest.mark.parametrize(("role", "deactivated"), [("manager", False), ("sysadmin", True)])
def test_a_system_administrators_mailbox_is_deactivated_only_by_a_system_administrator(
    as_role, accounts, role, deactivated
):
    mailbox = accounts["in_group"].mailbox

    as_role(role).post("/mailboxes/commands/", {"command": "deactivate", "selected": [mailbox.pk]})

    mailbox.refresh_from_db()
    assert (mailbox.state == Mailbox.State.INACTIVE) is deactivated


def test_a_manager_deactivates_an_ordinary_users_mailbox(as_role, accounts):
    mailbox = accounts["plain"].mailbox

    as_role("manager").post("/mailboxes/commands/", {"command": "deactivate", "selected": [mailbox.pk]})

    mailbox.refresh_from_db()
    assert mailbox.state == Mailbox.State.INACTIVE


@pytest.mark.parametrize(("role", "changed"), [("manager", False), ("sysadmin", True)])
def test_a_system_administrators_address_is_changed_on_the_mailbox_page_only_by_one(
    as_role, accounts, role, changed
):
    account = accounts["in_group"]
    url = f"/mailboxes/{account.mailbox.pk}/"
    data = page_form_data(as_role("sysadmin"), url, email="elsewhere@example.test")

    as_role(role).post(url, data)

    account.refresh_from_db()
    assert (account.email == account.mailbox.email == "elsewhere@example.test") is changed


# The services every entry point calls ----------------------------------------------------


@pytest.mark.parametrize("field", ["is_superuser", "is_staff"])
def test_user_save_refuses_a_role_change_by_a_manager(accounts, manager, field):
    plain = accounts["plain"]
    setattr(plain, field, True)

    with pytest.raises(ValidationError) as raised:
        user_save(plain, actor=manager)

    assert field in raised.value.error_dict
    assert getattr(User.objects.get(pk=plain.pk), field) is False


@pytest.mark.parametrize("actor", ["sysadmin", None])
def test_user_save_accepts_a_role_change_by_a_system_administrator_or_an_internal_call(
    accounts, request, actor
):
    plain = accounts["plain"]
    plain.is_staff = True

    user_save(plain, actor=request.getfixturevalue(actor) if actor else None)

    assert User.objects.get(pk=plain.pk).is_staff is True


def test_user_insert_refuses_a_staff_user_made_by_a_manager(manager):
    with pytest.raises(ValidationError) as raised:
        user_insert(user_build(username="rising", email="rising@example.test", is_staff=True), actor=manager)

    assert "is_staff" in raised.value.error_dict
    assert not User.objects.filter(username="rising").exists()


def test_user_insert_refuses_a_password_set_by_a_manager(manager):
    known = user_build(username="known", email="known@example.test", password=NEW_PASSWORD)

    with pytest.raises(ValidationError, match="Only a System Administrator may set another person"):
        user_insert(known, actor=manager)

    assert not User.objects.filter(username="known").exists()


@pytest.mark.parametrize("actor", ["sysadmin", None])
def test_user_insert_accepts_a_password_set_by_a_system_administrator_or_an_internal_call(request, actor):
    actor = request.getfixturevalue(actor) if actor else None
    known = user_build(username="known", email="known@example.test", password=NEW_PASSWORD)

    user = user_insert(known, actor=actor)

    assert user.check_password(NEW_PASSWORD)


def test_a_deactivated_system_administrators_account_stays_protected(accounts, manager):
    account = accounts["in_group"]
    account.is_active = False
    user_save(account)  # an internal call
    account.refresh_from_db()
    account.full_name = "Renamed"

    with pytest.raises(ValidationError):
        user_save(account, actor=manager)
    with pytest.raises(ValidationError):
        user_delete(user=account, actor=manager)


# The commands ---------------------------------------------------------------------------


@pytest.fixture
def apply(run, tmp_path):
    def apply_file(data, **options):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return run("apply_config", str(path), **options)

    return apply_file


def users_entry(user: User, **changes) -> dict:
    return {
        "users": [
            {"username": user.username, "full_name": user.full_name, "email": user.email, "active": True}
            | changes
        ]
    }


@pytest.mark.parametrize("target", SYSTEM_ADMINISTRATORS)
def test_apply_config_refuses_a_manager_changing_a_system_administrators_account(
    apply, accounts, manager, unchanged_database, target
):
    account = accounts[target]

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(users_entry(account, full_name="Renamed", active=False), actor="manager")

    assert f"“{account.username}” is a System Administrator's account" in str(raised.value)
    assert str(raised.value).startswith(f"users[0] ({account.username})")


@pytest.mark.parametrize(("actor", "target"), [("sysadmin", "in_group"), ("manager", "plain")])
def test_apply_config_changes_an_account_the_actor_may_change(
    apply, accounts, sysadmin, manager, actor, target
):
    account = accounts[target]

    apply(users_entry(account, full_name="Renamed", active=False), actor=actor)

    account.refresh_from_db()
    assert (account.full_name, account.is_active) == ("Renamed", False)


@pytest.mark.parametrize("target", SYSTEM_ADMINISTRATORS)
def test_apply_config_refuses_a_manager_deactivating_a_system_administrators_mailbox(
    apply, accounts, manager, unchanged_database, target
):
    # Mailbox entries are written in batches by the bulk writer: the same roles check.
    account = accounts[target]
    entry = {"mailboxes": [{"email": account.email, "active": False}]}

    with unchanged_database(), pytest.raises(CommandError) as raised:
        apply(entry, actor="manager")

    assert f"“{account.username}” is a System Administrator's account" in str(raised.value)
    assert str(raised.value).startswith(f"mailboxes[0] ({account.email})")


def test_apply_config_deactivates_a_mailbox_the_actor_may_change(apply, accounts, manager):
    account = accounts["plain"]

    apply({"mailboxes": [{"email": account.email, "active": False}]}, actor="manager")

    mailbox = Mailbox.objects.get(user=account)
    assert (mailbox.state, mailbox.enabled_incoming) == ("inactive", False)


# Settings only by those who may (the default server profile) ----------------------------

PROFILE_ADMIN = "/admin/serverprofiles/emailserverprofile/"


def settings_history() -> list:
    return list(
        LogEntry.objects.filter(content_type__model="organizationsettings", action_flag=CHANGE).values_list(
            "user__username", flat=True
        )
    )


def test_a_settings_form_opened_before_the_default_changed_in_the_profile_admin_is_refused(as_role, profile):
    settings_page = as_role("sysadmin")
    stale = page_form_data(settings_page, "/settings/email/", approval_required_for_users=False)
    profile_admin = as_role("sysadmin")
    data = changeform_data(profile_admin.get(f"{PROFILE_ADMIN}{profile.pk}/change/"))
    profile_admin.post(f"{PROFILE_ADMIN}{profile.pk}/change/", {**data, "make_default": "on"})

    response = settings_page.post("/settings/email/", stale)

    assert response.status_code == 409
    settings = OrganizationSettings.load()
    assert settings.default_server_profile == profile
    assert settings.approval_required_for_users is True
    assert settings.version == 2
    assert settings_history() == ["sysadmin"]


@pytest.mark.parametrize(("role", "changes"), [("manager", False), ("sysadmin", True)])
def test_the_default_profile_is_changed_in_the_admin_only_with_the_settings_permission(
    as_role, profile, role, changes
):
    client = as_role(role)
    page = client.get(f"{PROFILE_ADMIN}{profile.pk}/change/")
    data = changeform_data(page)

    client.post(f"{PROFILE_ADMIN}{profile.pk}/change/", {**data, "make_default": "on"})

    assert page.context["adminform"].form.fields["make_default"].disabled is not changes
    assert (OrganizationSettings.load().default_server_profile == profile) is changes
    assert settings_history() == (["sysadmin"] if changes else [])


@pytest.mark.parametrize(("role", "changes"), [("manager", False), ("sysadmin", True)])
def test_a_profile_added_in_the_admin_becomes_the_default_only_with_the_settings_permission(
    as_role, role, changes
):
    client = as_role(role)
    data = changeform_data(client.get(f"{PROFILE_ADMIN}add/"))
    data.update(
        name="Fabrikam IMAP",
        server_type="imap-smtp",
        incoming_server="imap.fabrikam.test",
        outgoing_server="smtp.fabrikam.test",
        incoming_auth="user-credentials",
        outgoing_auth="user-credentials",
        make_default="on",
    )

    response = client.post(f"{PROFILE_ADMIN}add/", data)

    assert response.status_code == 302
    added = EmailServerProfile.objects.get(name="Fabrikam IMAP")
    assert (OrganizationSettings.load().default_server_profile == added) is changes


def test_unsetting_the_default_on_the_profile_page_is_a_settings_change_with_history(as_role, profile):
    client = as_role("sysadmin")
    url = f"/serverprofiles/{profile.pk}/"
    client.post(url, page_form_data(client, url, make_default=True))

    client.post(url, page_form_data(client, url, make_default=False))

    settings = OrganizationSettings.load()
    assert (settings.default_server_profile, settings.version) == (None, 3)
    assert settings_history() == ["sysadmin", "sysadmin"]


def make_default(client, profile: EmailServerProfile) -> None:
    url = f"/serverprofiles/{profile.pk}/"
    client.post(url, page_form_data(client, url, make_default=True))


def delete_profile(client, profile: EmailServerProfile, where: str):
    """Delete `profile` on its page, on its admin page, or with the admin's bulk action."""
    if where == "page":
        return client.post(f"/serverprofiles/{profile.pk}/delete/")
    if where == "admin":
        return client.post(f"{PROFILE_ADMIN}{profile.pk}/delete/", {"post": "yes"}, follow=True)
    selection = {"action": "delete_selected", "index": "0", "_selected_action": [profile.pk], "post": "yes"}
    return client.post(PROFILE_ADMIN, selection, follow=True)


@pytest.mark.parametrize("where", ["page", "admin", "admin bulk action"])
def test_a_manager_cannot_unset_the_default_profile_by_deleting_it(as_role, manager, profile, where):
    # The manager's account (and mailbox) exists first: the default profile is unused.
    make_default(as_role("sysadmin"), profile)

    response = delete_profile(as_role("manager"), profile, where)

    assert EmailServerProfile.objects.filter(pk=profile.pk).exists()
    settings = OrganizationSettings.load()
    assert (settings.default_server_profile, settings.version) == (profile, 2)
    assert settings_history() == ["sysadmin"]
    shown = html.unescape(response.content.decode())
    assert f'The email server profile "{profile.name}" is the default server profile' in shown
    if where == "page":
        assert response.status_code == 409


@pytest.mark.parametrize("where", ["page", "admin", "admin bulk action"])
def test_deleting_the_default_profile_unsets_the_default_as_a_settings_change(as_role, profile, where):
    client = as_role("sysadmin")
    make_default(client, profile)

    delete_profile(client, profile, where)

    assert not EmailServerProfile.objects.filter(pk=profile.pk).exists()
    settings = OrganizationSettings.load()
    assert (settings.default_server_profile, settings.version) == (None, 3)
    assert settings_history() == ["sysadmin", "sysadmin"]


def test_a_manager_cannot_make_a_new_profile_the_default_from_the_command_line(
    run, manager, unchanged_database
):
    with unchanged_database(), pytest.raises(CommandError) as raised:
        run(
            "create_server_profile",
            "--name",
            "Fabrikam IMAP",
            "--server-type",
            "imap-smtp",
            "--incoming-server",
            "imap.fabrikam.test",
            "--outgoing-server",
            "smtp.fabrikam.test",
            "--default",
            "--actor",
            "manager",
        )

    assert "manager may not change the organisation's email settings" in str(raised.value)

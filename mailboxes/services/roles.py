"""Roles cannot rise (SPEC 9): who may change roles, and whose account is out of reach.

Every entry point that changes a user — the pages, the Django admin, the commands, and
the mailbox services for a user's mailbox — asks these; `actor=None` is an internal call
(or a command run without --actor) and may do anything.
"""

from django.core.exceptions import ValidationError
from django.db.models import Q

from mailboxes.models import User

ADMINISTER_ROLES = "mailboxes.administer_roles"
# Account fields only a System Administrator changes; groups and permissions are the
# many-to-many fields of the same kind, which only the admin's role fields can reach.
ROLE_FIELDS = ("is_superuser", "is_staff")


def may_administer_roles(actor) -> bool:
    """Whether `actor` may change superuser and staff status, groups, permissions and
    other people's passwords: a System Administrator (or a superuser)."""
    return actor is None or actor.has_perm(ADMINISTER_ROLES)


def is_system_administrator(user: User) -> bool:
    """Whether `user` holds the roles permission (superuser, directly or through a group),
    active or not: a deactivated System Administrator's account is no less protected."""
    if user.pk is None:
        return bool(user.is_superuser)
    app_label, codename = ADMINISTER_ROLES.split(".")
    holds = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label) | Q(
        groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label
    )
    return User.objects.filter(Q(is_superuser=True) | holds, pk=user.pk).exists()


def may_change_account(actor, target: User) -> bool:
    """Whether `actor` may change, deactivate, rename or delete `target`'s account."""
    return may_administer_roles(actor) or not is_system_administrator(target)


def check_can_change_account(actor, target: User) -> None:
    """Refuse (ValidationError) a change to a System Administrator's account by anyone else."""
    if not may_change_account(actor, target):
        raise ValidationError(
            f"“{target.username}” is a System Administrator's account: only a System "
            "Administrator may change, deactivate, rename or delete it.",
            code="system_administrator_account",
        )


def check_can_change_roles(actor, user: User, changed) -> None:
    """Refuse (ValidationError, on the field) a change of superuser or staff status by
    anyone who is not a System Administrator; `changed` names the fields that change."""
    if may_administer_roles(actor):
        return
    refused = {
        field: f"Only a System Administrator may change {User._meta.get_field(field).verbose_name}."
        for field in ROLE_FIELDS
        if field in changed
    }
    if refused:
        raise ValidationError(refused, code="role_change")


def check_can_set_password(actor, user: User) -> None:
    """Refuse (ValidationError) a new account with a usable password from anyone who is
    not a System Administrator: other people's passwords are theirs alone to set, or a
    Manager would know the password of an account later promoted."""
    if not may_administer_roles(actor) and user.has_usable_password():
        raise ValidationError(
            {"password": "Only a System Administrator may set another person's password."},
            code="password_change",
        )

"""Services for users: creating one creates its mailbox in the same transaction."""

import secrets

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import Mailbox, OrganizationSettings, User
from mailboxes.services.mailboxes import mailbox_build, mailbox_save
from mailboxes.services.roles import (
    ROLE_FIELDS,
    check_can_change_account,
    check_can_change_roles,
    check_can_set_password,
)

# Mailbox errors that concern a field the user (or queue) form also has.
_SHARED_FIELDS = {"email": "email"}


def regarding_errors(error: ValidationError) -> ValidationError:
    """A mailbox's validation errors restated for the user or queue form that caused them."""
    if not hasattr(error, "error_dict"):
        return error
    mapped: dict[str, list] = {}
    for field, errors in error.error_dict.items():
        target = _SHARED_FIELDS.get(field, NON_FIELD_ERRORS)
        for item in errors:
            for message in item.messages:
                if target == NON_FIELD_ERRORS and field != NON_FIELD_ERRORS:
                    label = (
                        Mailbox._meta.get_field(field).verbose_name
                        if field in {f.name for f in Mailbox._meta.fields}
                        else field
                    )
                    message = f"Mailbox {label}: {message}"
                mapped.setdefault(target, []).append(message)
    return ValidationError(mapped)


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    password: str | None = None,
    full_name: str = "",
    is_active: bool = True,
    actor=None,
    via: str = "",
    **extra_fields,
) -> User:
    """Create a user and its mailbox, with the organisation's default email settings."""
    user = user_build(
        username=username,
        email=email,
        password=password,
        full_name=full_name,
        is_active=is_active,
        **extra_fields,
    )
    return user_insert(user, actor=actor, via=via)


def user_build(
    *,
    username: str,
    email: str,
    password: str | None = None,
    full_name: str = "",
    is_active: bool = True,
    **extra_fields,
) -> User:
    """The unsaved user user_create saves: without a password, one that cannot log in."""
    user = User(username=username, email=email, full_name=full_name, is_active=is_active, **extra_fields)
    if password:
        user.set_password(password)
    else:
        # What set_unusable_password() stores, "!" and 40 random characters, from one call
        # to the random source rather than one per character (a file creates thousands).
        user.password = UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)
    return user


@transaction.atomic
def user_insert(user: User, *, actor=None, via: str = "") -> User:
    """Save a new user built by a form, and create its mailbox; only a System
    Administrator creates a superuser or a staff user, or gives the account a password."""
    check_can_change_roles(actor, user, [field for field in ROLE_FIELDS if getattr(user, field)])
    check_can_set_password(actor, user)
    user.email = User.objects.normalize_email(user.email)
    user.full_clean(exclude=["password"])
    user.save()
    mailbox = mailbox_build(kind=Mailbox.Kind.USER, regarding=user, org=OrganizationSettings.load())
    try:
        mailbox.full_clean()
    except ValidationError as exc:
        raise regarding_errors(exc) from None
    mailbox.save()
    history.log_addition(actor, user, via=via)
    return user


@transaction.atomic
def user_save(user: User, *, expected_version: int | None = None, actor=None, via: str = "") -> User:
    """Save changes to a user; its mailbox follows its address (M12) and state (M16).

    Only a System Administrator changes a System Administrator's account, or anyone's
    superuser or staff status (SPEC 9)."""
    current = User.objects.select_for_update().get(pk=user.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleEditError(current)
    user.full_clean(exclude=["password"])
    changed = history.changed_fields(current, user, ignore=("version", "last_login"))
    if not changed:
        return user
    check_can_change_account(actor, current)
    check_can_change_roles(actor, user, changed)
    user.version = current.version + 1
    user.save()
    mailbox = Mailbox.objects.select_related("server_profile").get(user=user)
    mailbox.user = user
    if "email" in changed or "is_active" in changed:
        mailbox.email = user.email
        if "is_active" in changed:
            mailbox.state = Mailbox.State.ACTIVE if user.is_active else Mailbox.State.INACTIVE
        try:
            mailbox_save(mailbox, actor=actor, via=via)
        except ValidationError as exc:
            raise regarding_errors(exc) from None
    history.log_change(actor, user, changed, via=via)
    return user


@transaction.atomic
def user_delete(*, user: User, actor=None) -> None:
    """Delete a user and its mailbox; refused while the user owns a queue, and for a
    System Administrator's account unless a System Administrator asks."""
    check_can_change_account(actor, user)
    queues = list(user.owned_queues.values_list("name", flat=True)[:10])
    if queues:
        raise ValidationError(
            f"{user.username} owns these queues: {', '.join(queues)}. Give them another owner first."
        )
    history.log_deletion(actor, user)
    user.delete()

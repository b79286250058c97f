"""Services for email server profiles: every entry point calls these."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from serverprofiles.models import CONNECTION_FIELDS, EmailServerProfile


class ProfileInUseError(ValidationError):
    """P8: a profile that mailboxes use cannot be deleted."""

    def __init__(self, profile: EmailServerProfile, emails: list[str], total: int):
        self.emails, self.total = emails, total
        more = f" and {total - len(emails)} more" if total > len(emails) else ""
        super().__init__(
            f'The email server profile "{profile.name}" is used by {total} '
            f"mailbox{'es' if total != 1 else ''} and cannot be deleted: {', '.join(emails)}{more}. "
            "Give them another server profile first."
        )


UNENCRYPTED_REFUSED_MESSAGE = (
    'Only a System Administrator may change "Allow credentials over unencrypted connections".'
)


def can_administer_credentials(user) -> bool:
    """May `user` decide where stored passwords may go (SPEC 9)? None is the system itself."""
    from mailboxes.services.roles import may_administer_roles

    return user is None or bool(user.is_active and may_administer_roles(user))


def _check_unencrypted_credentials(profile: EmailServerProfile, was_allowed: bool, actor) -> None:
    if profile.allow_unencrypted_credentials != was_allowed and not can_administer_credentials(actor):
        raise ValidationError({"allow_unencrypted_credentials": UNENCRYPTED_REFUSED_MESSAGE})


def _set_default(profile: EmailServerProfile, make_default: bool | None, *, actor, via: str) -> None:
    """P7: the default profile is an organisation email setting, changed through its service."""
    from mailboxes.services.organization import organization_default_profile_set

    if make_default is None:
        return
    organization_default_profile_set(profile=profile, make_default=make_default, actor=actor, via=via)


@transaction.atomic
def profile_create(
    profile: EmailServerProfile, *, make_default: bool = False, actor=None, via: str = ""
) -> EmailServerProfile:
    """Create a server profile; `make_default` makes it the default for new mailboxes (P7)."""
    _check_unencrypted_credentials(profile, False, actor)
    profile.full_clean()
    profile.save()
    _set_default(profile, make_default, actor=actor, via=via)
    history.log_addition(actor, profile, via=via)
    return profile


@transaction.atomic
def profile_save(
    profile: EmailServerProfile,
    *,
    expected_version: int | None = None,
    make_default: bool | None = None,
    actor=None,
    via: str = "",
) -> EmailServerProfile:
    """Save changes to a profile; a change to how it connects resets its mailboxes' tests (P9)."""
    from mailboxes.models import Mailbox
    from mailboxes.services.mailboxes import reset_test_results

    current = EmailServerProfile.objects.select_for_update().get(pk=profile.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleEditError(current)
    _check_unencrypted_credentials(profile, current.allow_unencrypted_credentials, actor)
    profile.full_clean()
    changed = history.changed_fields(current, profile)
    if changed:
        profile.version = current.version + 1
        profile.save()
        history.log_change(actor, profile, changed, via=via)
    if set(changed) & set(CONNECTION_FIELDS):
        blank = Mailbox()
        reset_test_results(blank, ("incoming", "outgoing", "act"))
        Mailbox.objects.filter(server_profile=profile).update(
            **{
                field: getattr(blank, field)
                for field in (
                    "incoming_status",
                    "outgoing_status",
                    "act_status",
                    "enabled_incoming",
                    "enabled_outgoing",
                    "enabled_act",
                    "incoming_error",
                    "outgoing_error",
                    "act_error",
                    "test_completed_on",
                )
            }
        )
    _set_default(profile, make_default, actor=actor, via=via)
    return profile


@transaction.atomic
def profiles_rebind_passwords(profile_ids, *, actor) -> int:
    """Bind the stored passwords (and OAuth client secret or key) of these profiles to the
    servers (and Token URL) they have now: a System Administrator vouches that the new
    location is the same server. Returns how many profiles had something to bind."""
    if not can_administer_credentials(actor):
        raise PermissionDenied("Only a System Administrator may re-bind stored passwords.")
    count = 0
    profiles = EmailServerProfile.objects.select_for_update().filter(pk__in=list(profile_ids))
    for profile in profiles.order_by("pk"):
        rebound = profile.rebind_passwords()
        if rebound:
            profile.version += 1
            profile.save(update_fields=[*rebound, "version", "modified_on"])
            labels = ", ".join(history.field_labels(EmailServerProfile, rebound))
            history.log_message(actor, profile, f"Re-bound to the current servers: {labels}.")
            count += 1
    return count


@transaction.atomic
def profile_delete(*, profile: EmailServerProfile, actor=None) -> None:
    """Delete a profile; P8 refuses while any mailbox uses it, naming them.

    The default profile is an organisation email setting (P7): deleting it unsets that
    setting first, through its service (permission, new version, history), and is refused
    to anyone who may not change the settings."""
    from mailboxes.models import OrganizationSettings
    from mailboxes.services.organization import (
        may_change_organization_settings,
        organization_default_profile_set,
    )

    users = profile.mailboxes.order_by("email")
    total = users.count()
    if total:
        raise ProfileInUseError(profile, list(users.values_list("email", flat=True)[:20]), total)
    # Locked until the profile is gone, so it cannot become the default meanwhile (the
    # database would then clear the setting behind the settings' back).
    settings, _ = OrganizationSettings.objects.select_for_update().get_or_create(pk=1)
    if settings.default_server_profile_id == profile.pk:
        if not may_change_organization_settings(actor):
            raise ValidationError(
                f'The email server profile "{profile.name}" is the default server profile for new '
                "mailboxes, an organisation email setting, and only someone who may change the "
                "email settings may delete it. Ask a System Administrator to make another "
                "profile the default first.",
                code="default_profile",
            )
        organization_default_profile_set(profile=profile, make_default=False, actor=actor)
    history.log_deletion(actor, profile)
    profile.delete()

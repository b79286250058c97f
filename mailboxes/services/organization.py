"""Services for the organisation's email settings: every change of them, the default
server profile included, goes through `organization_settings_save`."""

import copy

from django.core.exceptions import ValidationError
from django.db import transaction

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import OrganizationSettings

CHANGE_SETTINGS = "mailboxes.change_organizationsettings"


def may_change_organization_settings(actor) -> bool:
    """Whether `actor` may change the organisation's email settings (None: an internal call)."""
    return actor is None or actor.has_perm(CHANGE_SETTINGS)


@transaction.atomic
def organization_settings_save(
    settings: OrganizationSettings, *, expected_version: int | None = None, actor=None, via: str = ""
) -> OrganizationSettings:
    """Save the organisation's email settings (defaults for new mailboxes, approval switches)."""
    current, _ = OrganizationSettings.objects.select_for_update().get_or_create(pk=1)
    if expected_version is not None and current.version != expected_version:
        raise StaleEditError(current)
    settings.pk = 1
    settings.full_clean()
    changed = history.changed_fields(current, settings)
    if changed:
        if not may_change_organization_settings(actor):
            raise ValidationError(
                f"{actor.username} may not change the organisation's email settings, the default "
                "server profile for new mailboxes among them.",
                code="permission_denied",
            )
        settings.version = current.version + 1
        settings.save()
        history.log_change(actor, settings, changed, via=via)
    return settings


@transaction.atomic
def organization_default_profile_set(
    *, profile, make_default: bool, actor=None, via: str = ""
) -> OrganizationSettings:
    """Make `profile` the default server profile for new mailboxes, or (`make_default`
    false) stop it being the default: a change of the settings like any other, with their
    permission, a new version and a history entry (P7)."""
    current, _ = OrganizationSettings.objects.select_for_update().get_or_create(pk=1)
    is_default = current.default_server_profile_id == profile.pk
    if make_default == is_default:
        return current
    settings = copy.copy(current)
    settings.default_server_profile = profile if make_default else None
    return organization_settings_save(settings, expected_version=current.version, actor=actor, via=via)

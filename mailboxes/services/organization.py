from django.db import transaction

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import OrganizationSettings


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
        settings.version = current.version + 1
        settings.save()
        history.log_change(actor, settings, changed, via=via)
    return settings

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security, "mailboxadmin")
def check_required_keys(app_configs, **kwargs):
    """With DEBUG off, refuse to start without SECRET_KEY and FIELD_ENCRYPTION_KEYS."""
    if settings.DEBUG:
        return []
    errors = []
    if getattr(settings, "SECRET_KEY_MISSING", False):
        errors.append(
            Error(
                "SECRET_KEY is not set.",
                hint="Set SECRET_KEY in the environment or .env to a long random value, "
                'e.g. the output of `python -c "import secrets; print(secrets.token_urlsafe(50))"`.',
                id="mailboxadmin.E001",
            )
        )
    if not [k for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]:
        errors.append(
            Error(
                "FIELD_ENCRYPTION_KEYS is not set: stored mail passwords cannot be encrypted.",
                hint="Set FIELD_ENCRYPTION_KEYS in the environment or .env to a key made "
                "with `manage.py generate_encryption_key`.",
                id="mailboxadmin.E002",
            )
        )
    return errors


def refuse_to_start_without_keys() -> None:
    """For servers that skip system checks (gunicorn): stop with the same messages."""
    errors = check_required_keys(None)
    if errors:
        raise ImproperlyConfigured(" ".join(f"{e.msg} {e.hint}" for e in errors))

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
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


@register(Tags.security, "mailboxadmin", deploy=True)
def check_proxy_for_login_limiting(app_configs, **kwargs):
    """Behind a TLS proxy with TRUSTED_PROXY_COUNT 0, every client has the proxy's address:
    one guesser would get everyone's sign-in refused from that address."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and settings.TRUSTED_PROXY_COUNT <= 0:
        return [
            Warning(
                "BEHIND_TLS_PROXY is set but TRUSTED_PROXY_COUNT is 0: sign-in limiting sees every "
                "client at the proxy's address.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies in front of the app (usually 1); "
                "each must append the client's address to X-Forwarded-For.",
                id="mailboxadmin.W001",
            )
        ]
    return []


def refuse_to_start_without_keys() -> None:
    """For servers that skip system checks (gunicorn): stop with the same messages."""
    errors = check_required_keys(None)
    if errors:
        raise ImproperlyConfigured(" ".join(f"{e.msg} {e.hint}" for e in errors))

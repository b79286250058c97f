"""With DEBUG off, missing keys stop the start with a message that says how to fix it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailboxadmin.checks import (
    check_proxy_for_login_limiting,
    check_required_keys,
    refuse_to_start_without_keys,
)

ROOT = Path(__file__).resolve().parents[2]


def test_missing_encryption_keys_is_an_error_naming_the_fix(settings):
    settings.DEBUG = False
    settings.FIELD_ENCRYPTION_KEYS = []
    errors = check_required_keys(None)
    assert [e.id for e in errors] == ["mailboxadmin.E002"]
    assert "generate_encryption_key" in errors[0].hint


def test_missing_secret_key_is_an_error(settings):
    settings.DEBUG = False
    settings.SECRET_KEY_MISSING = True
    assert "mailboxadmin.E001" in [e.id for e in check_required_keys(None)]


def test_debug_allows_missing_keys(settings):
    settings.DEBUG = True
    settings.FIELD_ENCRYPTION_KEYS = []
    assert check_required_keys(None) == []


def test_wsgi_start_refused_without_keys(settings):
    settings.DEBUG = False
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        refuse_to_start_without_keys()


def test_manage_py_refuses_to_start_without_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DEBUG"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mailboxadmin.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "ENV_FILE": "",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "generate_encryption_key" in result.stderr


def test_a_tls_proxy_without_a_trusted_proxy_count_is_a_deploy_warning(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXY_COUNT = 0
    assert [warning.id for warning in check_proxy_for_login_limiting(None)] == ["mailboxadmin.W001"]
    settings.TRUSTED_PROXY_COUNT = 1
    assert check_proxy_for_login_limiting(None) == []
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.TRUSTED_PROXY_COUNT = 0
    assert check_proxy_for_login_limiting(None) == []

"""The production settings: `check --deploy` is clean, and no secret reaches a log line.

Both run `manage.py` in a subprocess with the real settings module (not the test
settings), DEBUG off and keys from the environment only (ENV_FILE="": no .env is read).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailboxadmin.logging import redact

ROOT = Path(__file__).resolve().parents[2]
# Distinctive, so that any leak is easy to find.
SECRET = "Sq9-wombat-Leak-Canary"
TOKEN_PLAINTEXT = "canary-credential"


def production_env(tmp_path, **extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests' setting, never a production one.
        if k
        not in {
            "DEBUG",
            "SECURE_SSL_REDIRECT",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
        and not k.startswith("SECURE_")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mailboxadmin.settings",
            "ENV_FILE": "",
            "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.db",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr and "ERRORS" not in result.stderr


def test_check_deploy_fails_when_a_production_safeguard_is_turned_off(tmp_path):
    """The check above can fail: switching HSTS off is reported (security.W004)."""
    result = manage(
        ["check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path, SECURE_HSTS_SECONDS="0")
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr


# Each logs through the root logger as settings.LOGGING configures it; the secret comes
# from the environment so it is not on the command line either.
LOG_SCRIPT = """
import logging, os
import django
django.setup()
from mailboxadmin import encryption
secret = os.environ["CANARY"]
log = logging.getLogger("mailboxes.services.testing")
log.info("login failed for alice password=%s", secret)
log.warning("profile saved: {'incoming_password': '%s'}", secret)
token = encryption.encrypt(os.environ["CANARY_PLAIN"])
log.error("stored value %s", token)
print("TOKEN-PREFIX", token[:12])
try:
    raise ValueError(f"could not connect with password={secret}")
except ValueError:
    log.exception("connection test crashed")
logging.getLogger("django.request").error("request failed token=%s", secret)
"""


def test_secrets_logged_through_the_configured_logging_are_redacted(tmp_path):
    env = production_env(tmp_path, CANARY=SECRET, CANARY_PLAIN=TOKEN_PLAINTEXT)
    result = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    emitted = result.stderr
    # Every line was emitted (the handler is the settings' console handler) …
    assert "login failed for alice" in emitted
    assert "profile saved" in emitted
    assert "stored value" in emitted
    assert "connection test crashed" in emitted
    assert "Traceback" in emitted and "ValueError: could not connect with password=" in emitted
    assert "request failed" in emitted
    # … with every secret replaced.
    assert SECRET not in emitted
    token_prefix = result.stdout.split("TOKEN-PREFIX", 1)[1].strip()
    assert token_prefix.startswith("gAAAAA")
    assert token_prefix not in emitted
    assert emitted.count("[redacted]") >= 5


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("profile saved: {'incoming_password': 'hunter2'}", "hunter2"),
        ('password="two words" next', "two words"),
        ('{"password": "Zq7-\\"wombat\\"-Pa55!"}', "wombat"),
        ("POST csrfmiddlewaretoken=abc123xyz&username=alice", "abc123xyz"),
        ("Authorization: Basic QWxhZGRpbjpvcGVu", "QWxhZGRpbjpvcGVu"),
    ],
)
def test_redaction_covers_prefixed_names_quoted_values_and_headers(line, secret):
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_redaction_leaves_ordinary_text_alone():
    line = "Tested mailbox alice@contoso.test: Incoming Email Success (the token bucket is full)"
    assert redact(line) == line

"""Test settings: the real settings, with overrides for speed only."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault(
    # Two fixed keys: the first encrypts, both decrypt (see mailboxadmin/encryption.py).
    "FIELD_ENCRYPTION_KEYS",
    "VGVzdEtleU9uZVRlc3RLZXlPbmVUZXN0S2V5T25lMTI=,VGVzdEtleVR3b1Rlc3RLZXlUd29UZXN0S2V5VHdvMTI=",
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# A developer's .env (DEBUG=true from `make run`) must not change what the tests see.
os.environ.setdefault("DEBUG", "false")

from mailboxadmin.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Raw messages of a test run go to a folder of its own under the temporary directory,
# removed when the run ends. The processes a test starts (workers, commands) inherit it
# through the environment and leave it to the run: one killed on purpose removes nothing.
_EMAILS_FOLDER = os.environ.get("MAILBOXADMIN_TEST_EMAILS_FOLDER", "")
if not _EMAILS_FOLDER:
    _EMAILS_FOLDER = tempfile.mkdtemp(prefix="mailboxadmin-test-emails-")
    os.environ["MAILBOXADMIN_TEST_EMAILS_FOLDER"] = _EMAILS_FOLDER
    atexit.register(shutil.rmtree, _EMAILS_FOLDER, ignore_errors=True)
STORAGES["emails"] = {  # noqa: F405
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": _EMAILS_FOLDER},
}
# Tests serve static files through the finders; no collected folder is expected.
STATIC_ROOT = None
# The suite's mail servers listen on loopback, which the outbound policy refuses by default.
MAIL_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]

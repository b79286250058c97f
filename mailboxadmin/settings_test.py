"""Test settings: the real settings, with overrides for speed only."""

import os
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
# Raw messages of a test run go to a folder of its own under the temporary directory.
STORAGES["emails"] = {  # noqa: F405
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": tempfile.mkdtemp(prefix="mailboxadmin-test-emails-")},
}
# Tests serve static files through the finders; no collected folder is expected.
STATIC_ROOT = None
# The suite's mail servers listen on loopback, which the outbound policy refuses by default.
MAIL_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]

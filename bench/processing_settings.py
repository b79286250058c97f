"""The production settings, with the raw messages of the mail-processing scenario written
to a throwaway folder (BENCH_EMAILS_DIR) rather than the checkout's var/emails: the run
stores ≈240 MB of them, removed with the folder at its end (bench/processing.py)."""

import os

from mailboxadmin.settings import *  # noqa: F403
from mailboxadmin.settings import STORAGES

STORAGES = {
    **STORAGES,
    "emails": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ["BENCH_EMAILS_DIR"]},
    },
}

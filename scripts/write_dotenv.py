"""Write a local development `.env` with fresh keys, unless one exists.

Run with the project's virtualenv Python (it needs the `cryptography` package). The keys
go straight into the file (mode 600) and are never printed.
"""

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

TEMPLATE = """\
# Local development settings, written by `make run`. Keep this file private: without
# FIELD_ENCRYPTION_KEYS the mail passwords stored in the database cannot be read.
DEBUG=true
ALLOWED_HOSTS=127.0.0.1,localhost
SECRET_KEY={secret_key}
# Comma-separated Fernet keys: the first encrypts, all decrypt. To rotate, put a new key
# (manage.py generate_encryption_key) first, then run manage.py rotate_encryption_keys.
FIELD_ENCRYPTION_KEYS={encryption_key}
# DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/mailboxadmin  (default: var/db.sqlite3)
# Connection tests refuse loopback; to test against mail servers on this machine:
# MAIL_ALLOWED_NETWORKS=127.0.0.0/8,::1/128
"""


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if path.exists():
        print(f"Using the existing {path}.")
        return 0
    content = TEMPLATE.format(
        secret_key=secrets.token_urlsafe(50),
        encryption_key=Fernet.generate_key().decode(),
    )
    # O_EXCL: never overwrite a .env that appeared meanwhile; 0o600: the keys are secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(content)
    print(f"Wrote {path} with a new SECRET_KEY and FIELD_ENCRYPTION_KEYS (development: DEBUG=true).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

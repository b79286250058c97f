#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailboxadmin.settings")
    # Django's, with a database that cannot be used reported in one line, not a traceback.
    from mailboxadmin.commands import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

import json
import sys

from django.core.management.base import CommandError

from mailboxadmin.commands import Progress, ScriptCommand, add_actor_argument, command_actor
from mailboxes.config.apply import config_apply
from mailboxes.config.document import ConfigError

# What a file may do, section by section; an --actor needs the permissions for the
# sections its file holds.
PERMISSIONS = {
    "settings": ("mailboxes.change_organizationsettings",),
    "server_profiles": ("serverprofiles.add_emailserverprofile", "serverprofiles.change_emailserverprofile"),
    "users": ("mailboxes.add_user", "mailboxes.change_user"),
    "queues": ("mailboxes.add_queue", "mailboxes.change_queue"),
    "mailboxes": ("mailboxes.add_mailbox", "mailboxes.change_mailbox"),
}


def _permissions_for(data) -> list[str]:
    if not isinstance(data, dict):
        return []
    needed = [perm for section in PERMISSIONS if section in data for perm in PERMISSIONS[section]]
    mailboxes = data.get("mailboxes")
    if isinstance(mailboxes, list) and any(isinstance(m, dict) and "approval" in m for m in mailboxes):
        needed.append("mailboxes.approve_email")
    return needed


def _unique_keys(pairs):
    """One pass over the object's keys (counting each key's occurrences was quadratic: an
    object of 30,000 keys took 12 s)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        duplicates = {key for key, _ in pairs if key in seen or seen.add(key)}
        raise ValueError(f"the key {min(duplicates)!r} appears twice in one object")
    return result


class Command(ScriptCommand):
    help = (
        "Create or update everything a configuration file (the format export_config writes) "
        "describes, so the database matches it. What the file leaves out is left as it is; "
        "nothing is deleted. Every record is checked by the same rules as the browser, and it "
        "is all or nothing: one wrong record and nothing is written, with one line naming the "
        "record and the field. Passwords are never in the file: a record names an environment "
        'variable with "password_env": "VAR". Running the same file again changes nothing. '
        "--dry-run prints the plan — create, update (with the fields) or unchanged for each "
        "record — and writes nothing."
    )
    example = """
        FWD_PASSWORD=... manage.py apply_config config.json --dry-run
        FWD_PASSWORD=... manage.py apply_config config.json

        config.json:
          {"server_profiles": [{"name": "Contoso IMAP", "server_type": "imap-smtp",
             "incoming_server": "imap.contoso.test", "outgoing_server": "smtp.contoso.test",
             "incoming_auth": "user-credentials"}],
           "settings": {"default_server_profile": "Contoso IMAP"},
           "users": [{"username": "alice", "full_name": "Alice Example",
                      "email": "alice@contoso.test"}],
           "mailboxes": [{"email": "fwd@contoso.test", "name": "Forward box", "forward": true,
                          "server_profile": "Contoso IMAP", "allow_credentials": true,
                          "username": "fwd@contoso.test", "password_env": "FWD_PASSWORD"},
                         {"email": "alice@contoso.test", "incoming": "forward-mailbox",
                          "approval": "approved"}]}
    """

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help='The configuration file ("-" for standard input).')
        parser.add_argument(
            "--dry-run", action="store_true", help="Check everything and print the plan; write nothing."
        )
        add_actor_argument(parser)

    def handle(self, *args, **options):
        path, dry_run = options["file"], options["dry_run"]
        data = self.read(path)
        actor = command_actor(options, *_permissions_for(data))
        progress = Progress(self.stderr)
        try:
            plan = config_apply(data, dry_run=dry_run, actor=actor, progress=progress)
        except ConfigError as error:
            raise CommandError(str(error)) from None
        finally:
            progress.finish()
        for entry in plan.entries:
            if dry_run or entry.action != "unchanged" or options["verbosity"] >= 2:
                self.stdout.write(str(entry))
        created, updated, unchanged = (plan.count(a) for a in ("create", "update", "unchanged"))
        if dry_run:
            self.stdout.write(
                f"Dry run of {path}: would create {created}, update {updated} and leave {unchanged} "
                "unchanged; nothing was written."
            )
        else:
            self.stdout.write(f"Applied {path}: created {created}, updated {updated}, unchanged {unchanged}.")

    def read(self, path: str):
        try:
            if path == "-":
                return json.load(sys.stdin, object_pairs_hook=_unique_keys)
            with open(path, encoding="utf-8") as handle:
                return json.load(handle, object_pairs_hook=_unique_keys)
        except OSError as error:
            raise CommandError(f"{path}: cannot read it: {error.strerror}.") from None
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{path}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
            ) from None
        except (UnicodeDecodeError, ValueError) as error:
            raise CommandError(f"{path}: {error}.") from None
        except RecursionError:
            raise CommandError(
                f"{path}: nested too deeply to read (lists or objects within each other)."
            ) from None

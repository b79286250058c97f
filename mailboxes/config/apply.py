"""apply_config: make the database match a configuration file, all or nothing.

Records are applied in dependency order — server profiles, settings, users (each with
its mailbox), queues (likewise), forward mailboxes, then the mailbox entries — each
through the same service the browser uses, so every rule applies. Each record is
compared with the database first and written only if it differs, which is what makes a
second run of the same file change nothing. All of it runs in one transaction: the first
error rolls everything back, and a dry run rolls back at the end.

Files of thousands of users and mailboxes are the common case, so new users and changed
user and queue mailboxes are saved in batches of `BATCH_SIZE` through the bulk writer
(mailboxes/services/bulk.py: the same rules, consequences and history as the
single-record services, a few queries per batch instead of about ten per record). A
batch is written before any record after it is applied one by one, and before an error
of a later record is reported, so the order of writes — and the first error reported —
are those of applying every record one at a time.
"""

import copy
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from functools import cache

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from mailboxadmin import history
from mailboxadmin.commands import one_line
from mailboxadmin.exceptions import StaleEditError
from mailboxes.config.document import (
    ConfigError,
    Document,
    Record,
    parse_document,
    renamed,
)
from mailboxes.config.plan import Plan, PlanEntry
from mailboxes.config.schema import (
    MAILBOX_KEYS,
    PROFILE_KEYS,
    QUEUE_KEYS,
    SETTINGS_KEYS,
    USER_KEYS,
    BadValue,
    Key,
    file_key_for_field,
)
from mailboxes.models import ApprovalStatus, IncomingMethod, Mailbox, OrganizationSettings, Queue, User
from mailboxes.services.bulk import RecordFailed, mailboxes_save, users_insert
from mailboxes.services.mailboxes import (
    forward_mailbox_insert,
    mailbox_save,
    mailbox_set_approval,
)
from mailboxes.services.organization import organization_settings_save
from mailboxes.services.queues import queue_insert, queue_save
from mailboxes.services.users import user_build, user_save
from serverprofiles.models import EmailServerProfile
from serverprofiles.services import profile_create, profile_save

VIA = "apply_config"
# Keep IN (...) lists under SQLite's limit on query parameters.
LOOKUP_CHUNK = 500
# New users, and changes of user and queue mailboxes, are saved this many at a time.
BATCH_SIZE = 1000
_SECTION_ORDER = ("server_profiles", "settings", "users", "queues", "mailboxes")
_DEFER = object()  # a profile owner who is created later in the same run


def config_apply(
    data,
    *,
    dry_run: bool = False,
    actor=None,
    environ=None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Plan:
    """Create or update everything `data` (a parsed configuration file) describes.

    Raises ConfigError, with one line naming the record and the field, and writes
    nothing if any record is wrong. With `dry_run`, every record is applied and checked
    just the same, and then everything is rolled back: the plan is exactly what a real
    run would do.
    """
    document = parse_document(data, environ=environ)
    with transaction.atomic():
        plan = _Applier(document, actor=actor, progress=progress).run()
        if dry_run:
            transaction.set_rollback(True)
    return plan


def _chunks(items: list, size: int = LOOKUP_CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@cache
def _names_and_order(keys: tuple[Key, ...]) -> tuple[dict[str, str], dict[str, int]]:
    """Each field's file key, and each file key's place in the file (a plan lists them so)."""
    return file_key_for_field(keys), {key.name: n for n, key in enumerate(keys)}


# How each model stores a secret the file gives: bound to its record's servers (SPEC 9).
SECRET_SETTERS = {
    "password_ciphertext": "set_password",
    "incoming_password_ciphertext": "set_incoming_password",
    "outgoing_password_ciphertext": "set_outgoing_password",
    # SPEC 7: "oauth_client_secret_env" is the profile's OAuth secret, whatever the
    # provider (Google's is its service account key, as with create_server_profile).
    "oauth_client_secret_ciphertext": "set_oauth_secret",
    "oauth_service_account_key_ciphertext": "set_oauth_service_account_key",
}


class _Applier:
    def __init__(self, document: Document, *, actor, progress):
        self.document = document
        self.actor = actor
        self.progress = progress
        self.entries: dict[tuple[str, int | None], PlanEntry] = {}
        self.done = 0
        self.profiles: dict[str, EmailServerProfile] = {}
        self.users: dict[str, User] = {}
        self.users_to_create = set()
        self.deferred_owners: list[tuple[Record, EmailServerProfile, str]] = []
        # The mailboxes of the users created in this run, by address, as they were saved:
        # the mailbox entries need not read them back (a stale one fails the version check).
        self.created_mailboxes: dict[str, Mailbox] = {}

    def run(self) -> Plan:
        document = self.document
        self.users_to_create = {record.identity for record in document.users}
        self.apply_profiles(document.server_profiles)
        if document.settings is not None:
            self.apply_settings(document.settings)
        self.apply_users(document.users)
        self.users_to_create = set()
        self.apply_deferred_owners()
        self.apply_queues(document.queues)
        self.apply_mailboxes(document.mailboxes)
        order = {section: n for n, section in enumerate(_SECTION_ORDER)}
        entries = sorted(self.entries.values(), key=lambda e: (order[e.section], e.index or 0))
        return Plan(entries)

    # Bookkeeping ---------------------------------------------------------------------

    def report(self, record: Record, action: str, fields=()) -> PlanEntry:
        entry = PlanEntry(record.section, record.index, record.label, action, list(fields))
        self.entries[(record.section, record.index)] = entry
        self.done += 1
        if self.progress:
            self.progress(record.section, self.done, self.document.size)
        return entry

    def changed(
        self, before, after, keys: tuple[Key, ...], *, ignore=("version", "modified_on")
    ) -> list[str]:
        """The file keys whose fields differ between two versions of a row."""
        names, order = _names_and_order(keys)
        changed = [names.get(f, f) for f in history.changed_fields(before, after, ignore=ignore)]
        return sorted(changed, key=lambda name: order.get(name, len(order)))

    @contextmanager
    def batch_written_first(self, flush: Callable[[], None]):
        """A record's error is reported only after the batch of the records before it is
        written: if one of those is wrong, that error comes first, as one by one."""
        try:
            yield
        except ConfigError:
            flush()
            raise

    def write_batch(self, batch: list, keys: tuple[Key, ...], save: Callable[[], None]) -> None:
        """Run `save` for a batch of records; a record it refuses is named as one line."""
        try:
            save()
        except RecordFailed as failure:
            with self.errors_named(batch[failure.index][0], keys):
                raise failure.error from None
        except IntegrityError as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(
                f"{batch[0][0].label} to {batch[-1][0].label}: the database refused the change "
                f"of one of these {len(batch)} records: {reason}"
            ) from None

    @contextmanager
    def errors_named(self, record: Record, keys: tuple[Key, ...]):
        """Any failure while applying `record`, as one ConfigError line naming it."""
        try:
            yield
        except BadValue as problem:
            raise ConfigError(f"{record.label}: {problem.key}: {problem.message}") from None
        except ValidationError as error:
            raise ConfigError(
                one_line(renamed(error, file_key_for_field(keys)), record=record.label)
            ) from None
        except StaleEditError as error:
            raise ConfigError(f"{record.label}: {error} Run the command again.") from None
        except IntegrityError as error:
            # Only the first line: a database's detail may quote whole rows.
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(f"{record.label}: the database refused the change: {reason}") from None

    # References ----------------------------------------------------------------------

    def profile(self, key: Key, name: str) -> EmailServerProfile:
        try:
            return self.profiles[name]
        except KeyError:
            raise BadValue(key.name, f'there is no email server profile named "{name}".') from None

    def user(self, key: Key, username: str):
        if username not in self.users:
            found = User.objects.filter(username=username).first()
            if found is None:
                if username in self.users_to_create:
                    return _DEFER
                raise BadValue(key.name, f'there is no user named "{username}".')
            self.users[username] = found
        return self.users[username]

    def assign(self, instance, record: Record, keys: tuple[Key, ...], *, skip=()) -> list[str]:
        """Set `instance`'s fields from `record`; returns the keys deferred to later."""
        deferred = []
        for key in keys:
            if key.name not in record.values or key.name in skip or key.kind in ("secret", "forward"):
                continue
            value = record.values[key.name]
            if value is not None and key.kind == "user":
                value = self.user(key, value)
                if value is _DEFER:
                    deferred.append(key.name)
                    continue
            elif value is not None and key.kind == "profile":
                value = self.profile(key, value)
            setattr(instance, key.field, value)
        return deferred

    def assign_secrets(self, instance, current, record: Record, keys: tuple[Key, ...]) -> None:
        """Set the secrets the file gives, keeping the stored token where it already holds them.

        A token is different every time a value is encrypted, so re-encrypting an
        unchanged password would count as a change (and reset test results) on every run.
        """
        for key in keys:
            if key.kind != "secret":
                continue
            if key.name in record.secrets:
                # Bound to the servers the record has now (its fields are assigned);
                # the stored token is kept when it holds the same password, bound alike.
                getattr(instance, SECRET_SETTERS[key.field])(record.secrets[key.name])
            elif key.name in record.claimed and not getattr(instance, key.field):
                raise BadValue(
                    f"{key.name}_set",
                    "the file says a password is set, but none is stored here; "
                    f'give it with "{key.name}_env".',
                )

    # Sections ------------------------------------------------------------------------

    def apply_profiles(self, records: list[Record]) -> None:
        self.profiles = {profile.name: profile for profile in EmailServerProfile.objects.all()}
        for record in records:
            with self.errors_named(record, PROFILE_KEYS):
                current = self.profiles.get(record.identity)
                profile = EmailServerProfile() if current is None else copy.copy(current)
                deferred = self.assign(profile, record, PROFILE_KEYS)
                self.assign_secrets(profile, current, record, PROFILE_KEYS)
                if "owner" in deferred:
                    self.deferred_owners.append((record, profile, record.values["owner"]))
                if current is None:
                    profile_create(profile, actor=self.actor, via=VIA)
                    self.report(record, "create")
                else:
                    profile.normalize()  # as saving would, so derived values are no change
                    changed = self.changed(current, profile, PROFILE_KEYS)
                    if changed:
                        profile_save(profile, expected_version=current.version, actor=self.actor, via=VIA)
                    self.report(record, "update" if changed else "unchanged", changed)
                self.profiles[profile.name] = profile

    def apply_settings(self, record: Record) -> None:
        with self.errors_named(record, SETTINGS_KEYS):
            current = OrganizationSettings.load()
            settings = copy.copy(current)
            self.assign(settings, record, SETTINGS_KEYS)
            changed = self.changed(current, settings, SETTINGS_KEYS)
            if changed:
                organization_settings_save(
                    settings, expected_version=current.version, actor=self.actor, via=VIA
                )
            self.report(record, "update" if changed else "unchanged", changed)

    def apply_users(self, records: list[Record]) -> None:
        usernames = [record.identity for record in records]
        for chunk in _chunks(usernames):
            self.users.update((u.username, u) for u in User.objects.filter(username__in=chunk))
        batch: list[tuple[Record, User]] = []

        def flush():
            self.insert_users(batch)

        for record in records:
            with self.batch_written_first(flush), self.errors_named(record, USER_KEYS):
                email = record.values.get("email")
                # As user_insert stores it, so an address is compared the way it is kept.
                email = User.objects.normalize_email(email) if email else email
                current = self.users.get(record.identity)
                if current is None:
                    user = user_build(
                        username=record.identity,
                        email=email or "",
                        full_name=record.values.get("full_name", ""),
                        is_active=record.values.get("active", True),
                    )
                    batch.append((record, user))
                    if len(batch) >= BATCH_SIZE:
                        flush()
                else:
                    user = copy.copy(current)
                    self.assign(user, record, USER_KEYS, skip=("email",))
                    if email is not None:
                        user.email = email
                    changed = self.changed(current, user, USER_KEYS, ignore=("version", "last_login"))
                    if changed:
                        flush()
                        user_save(user, expected_version=current.version, actor=self.actor, via=VIA)
                    self.report(record, "update" if changed else "unchanged", changed)
                self.users[user.username] = user
        flush()

    def insert_users(self, batch: list[tuple[Record, User]]) -> None:
        """Create the users of `batch` (each with its mailbox), and empty it."""
        if not batch:
            return
        users = [user for _, user in batch]
        written = batch.copy()
        batch.clear()
        self.write_batch(
            written,
            USER_KEYS,
            lambda: users_insert(users, actor=self.actor, via=VIA),
        )
        for record, user in written:
            self.created_mailboxes[user.mailbox.email.lower()] = user.mailbox
            self.report(record, "create")

    def apply_deferred_owners(self) -> None:
        """Owners of profiles who did not exist until the users were applied."""
        for record, profile, username in self.deferred_owners:
            with self.errors_named(record, PROFILE_KEYS):
                current = EmailServerProfile.objects.get(pk=profile.pk)
                profile = copy.copy(current)
                profile.owner = self.users[username]
                profile_save(profile, expected_version=current.version, actor=self.actor, via=VIA)
                self.profiles[profile.name] = profile
                entry = self.entries[(record.section, record.index)]
                if entry.action == "unchanged":
                    entry.action = "update"
                if entry.action == "update" and "owner" not in entry.fields:
                    entry.fields.append("owner")

    def apply_queues(self, records: list[Record]) -> None:
        existing: dict[str, list[Queue]] = {}
        names = [record.identity for record in records]
        for chunk in _chunks(names):
            for queue in Queue.objects.filter(name__in=chunk).order_by("pk"):
                existing.setdefault(queue.name, []).append(queue)
        for record in records:
            with self.errors_named(record, QUEUE_KEYS):
                matches = existing.get(record.identity, [])
                if len(matches) > 1:
                    raise BadValue(
                        "name",
                        f"{len(matches)} queues are named {record.identity!r}; rename all but one "
                        "before applying a file that names them.",
                    )
                current = matches[0] if matches else None
                queue = Queue() if current is None else copy.copy(current)
                self.assign(queue, record, QUEUE_KEYS)
                if current is None:
                    queue_insert(queue, actor=self.actor, via=VIA)
                    self.report(record, "create")
                else:
                    changed = self.changed(current, queue, QUEUE_KEYS)
                    if changed:
                        queue_save(queue, expected_version=current.version, actor=self.actor, via=VIA)
                    self.report(record, "update" if changed else "unchanged", changed)

    def apply_mailboxes(self, records: list[Record]) -> None:
        existing: dict[str, Mailbox] = {}
        addresses = []
        for record in records:
            address = record.identity.lower()
            if address in self.created_mailboxes:
                existing[address] = self.created_mailboxes[address]
            else:
                addresses.append(address)
        # Every profile is in self.profiles already (a few, shared by many mailboxes).
        profiles = {profile.pk: profile for profile in self.profiles.values()}
        for chunk in _chunks(addresses):
            found = (
                Mailbox.objects.select_related("user", "queue")
                .annotate(address=Lower("email"))
                .filter(address__in=chunk)
            )
            for mailbox in found:
                if mailbox.server_profile_id in profiles:
                    mailbox.server_profile = profiles[mailbox.server_profile_id]
                existing[mailbox.address] = mailbox
        # Forward mailboxes first: user and queue mailboxes may receive through them (M14).
        ordered = [r for r in records if r.is_forward] + [r for r in records if not r.is_forward]
        batch: list[tuple[Record, Mailbox, Mailbox, list[str]]] = []

        def flush():
            self.save_mailboxes(batch)

        for record in ordered:
            with self.batch_written_first(flush), self.errors_named(record, MAILBOX_KEYS):
                current = existing.get(record.identity.lower())
                if current is None and record.is_forward:
                    flush()
                    self.create_forward_mailbox(record)
                else:
                    self.update_mailbox(record, current, batch, flush)
        flush()

    def save_mailboxes(self, batch: list[tuple[Record, Mailbox, Mailbox, list[str]]]) -> None:
        """Save the changed mailboxes of `batch`, and empty it."""
        if not batch:
            return
        written = batch.copy()
        batch.clear()
        changes = [(current, mailbox) for _, mailbox, current, _ in written]
        self.write_batch(written, MAILBOX_KEYS, lambda: mailboxes_save(changes, actor=self.actor, via=VIA))
        for record, _, _, changed in written:
            self.report(record, "update", changed)

    def create_forward_mailbox(self, record: Record) -> None:
        mailbox = Mailbox(kind=Mailbox.Kind.FORWARD, incoming_method=IncomingMethod.SERVER_SIDE_SYNC)
        self.assign(mailbox, record, MAILBOX_KEYS, skip=("approval",))
        self.assign_secrets(mailbox, None, record, MAILBOX_KEYS)
        forward_mailbox_insert(mailbox, actor=self.actor, via=VIA)
        if "owner" in record.values and record.values["owner"] is None and mailbox.owner_id is not None:
            # The service makes the creator the owner; the file says explicitly: nobody.
            mailbox.owner = None
            mailbox_save(mailbox, actor=self.actor, via=VIA)
        self.report(record, "create")

    def update_mailbox(self, record: Record, current: Mailbox | None, batch: list, flush) -> None:
        if current is None:
            raise BadValue(
                "email",
                'no user or queue has this address; to create a forward mailbox, add "forward": true.',
            )
        if record.is_forward and not current.is_forward:
            raise BadValue(
                "forward",
                f"this is the mailbox of {current.kind} {current.regarding}; a mailbox's kind is "
                "fixed when it is created.",
            )
        if not record.is_forward and current.is_forward:
            raise BadValue("forward", 'this is a forward mailbox; its entry needs "forward": true.')
        mailbox = copy.copy(current)
        self.assign(mailbox, record, MAILBOX_KEYS, skip=("approval",))
        self.assign_secrets(mailbox, current, record, MAILBOX_KEYS)
        if not mailbox.allow_credentials:  # M7, as validation will do: no change to report
            mailbox.username, mailbox.password_ciphertext = "", ""
        changed = self.changed(current, mailbox, MAILBOX_KEYS)
        approval = record.values.get("approval")
        if approval in (None, current.approval_status):
            if not changed:
                self.report(record, "unchanged")
                return
            batch.append((record, mailbox, current, changed))
            if len(batch) >= BATCH_SIZE:
                flush()
            return
        # A new Email Address Status is an action of its own (A1), after the change.
        flush()
        if changed:
            mailbox_save(mailbox, expected_version=current.version, actor=self.actor, via=VIA)
        if approval is not None and approval != mailbox.approval_status:
            _set_approval_status(mailbox, approval, actor=self.actor)
            changed.append("approval")
        self.report(record, "update" if changed else "unchanged", changed)


def _set_approval_status(mailbox: Mailbox, status: str, *, actor) -> None:
    """Set Email Address Status to what the file says.

    Approved and Rejected are the Approve / Reject Email actions (A1). Pending Approval and
    Empty have no button, but a file restores them as they were exported. Called inside
    config_apply's transaction, which holds the row lock until the end.
    """
    if status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        mailbox_set_approval(mailbox=mailbox, approved=status == ApprovalStatus.APPROVED, actor=actor)
        return
    current = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    if current.approval_status == status:
        return
    Mailbox.objects.filter(pk=mailbox.pk).update(
        approval_status=status, version=current.version + 1, modified_on=timezone.now()
    )
    history.log_message(
        actor, current, f"Email Address Status set to {ApprovalStatus(status).label} (via {VIA})."
    )
    mailbox.approval_status, mailbox.version = status, current.version + 1

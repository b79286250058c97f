"""The bulk writer: many mailbox changes at once, in chunks, with every rule checked.

Every set-wise writer goes through here: the admin's Set Server Profile… and Set
Delivery Methods… (`mailboxes_change`), apply_config (`users_insert`,
`mailboxes_save`). Each record gets exactly what `mailbox_save` gives one record —
`mailbox_change_prepare` (mailboxes/services/mailboxes.py) checks the rules and applies
the consequences — only the queries are shared, a handful per chunk of `CHUNK_SIZE`
instead of about ten per record:

- The rows of a chunk are locked (`select_for_update`) and their versions compared
  in one query: a row that moved on since it was read is refused as stale.
- Rules are checked per record with `full_clean()`; the rules that read other rows
  (M11 an address is unique, M14 a usable forward mailbox exists, M16 the user or queue
  is active, and a queue mailbox's owner) are answered by `RuleFacts`, loaded once per
  chunk. It takes records in list order: a record that takes an address, or stops being
  a forward target, counts for the records after it, as if they were saved one by one.
  Foreign keys and unique columns are not re-read per row: the values assigned are
  loaded instances, and the database checks every key and unique index on the write.
- Rows are written with `QuerySet.update` per distinct set of new values (a bulk action
  gives every row the same ones) or, when records differ (a file), with one upsert
  (`bulk_create(update_conflicts=True)`) of the changed columns; new rows with
  `bulk_create`; one history entry per changed row with one `bulk_create`.

A single-record service is a set of one: `mailbox_save` calls the same
`mailbox_change_prepare`, with full_clean() reading what it needs itself.
"""

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxadmin.outcomes import BulkOutcome
from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from mailboxes.services.mailboxes import (
    mailbox_build,
    mailbox_change_prepare,
    mailbox_save,
    regarding_email_follow,
)
from mailboxes.services.roles import ROLE_FIELDS, check_can_change_roles, check_can_set_password
from mailboxes.services.users import regarding_errors
from serverprofiles.models import EmailServerProfile

CHUNK_SIZE = 1000
# Keep IN (...) lists under SQLite's limit on query parameters.
LOOKUP_CHUNK = 500
# A chunk whose rows share few sets of new values (a bulk action gives them all the same,
# bar the test results it resets) is written with one UPDATE per set, at least this many
# rows each on average; otherwise (a file's records differ) with bulk_update, one
# statement of CASE expressions per batch, which costs more per row to build.
ROWS_PER_GROUPED_UPDATE = 50
# What a bulk action may not alter: those go through mailbox_save one record at a time.
_PER_RECORD_FIELDS = {"email", "kind", "user", "queue"}
# Foreign keys are not re-validated per row (one query each): see the module docstring.
_RELATION_FIELDS = frozenset(f.name for f in Mailbox._meta.concrete_fields if f.is_relation)
_FIELD_NAMES = frozenset(f.name for f in Mailbox._meta.concrete_fields)


class RecordFailed(Exception):
    """The record at `index` would be refused by the single-record service with `error`."""

    def __init__(self, index: int, error: Exception):
        super().__init__(index, error)
        self.index, self.error = index, error


def _chunks(items: list, size: int = LOOKUP_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _key(mailbox: Mailbox):
    if mailbox.pk is not None:
        return mailbox.pk
    return ("new", id(mailbox))


class RuleFacts:
    """M11, M14, M16 and a queue's owner for a set of mailboxes saved in order, from one
    query each (made only when a record asks).

    Handed to each mailbox as its `rule_facts` while it is validated (see
    Mailbox.email_is_taken); `accept()` records that a mailbox was saved, so that the
    records after it see it. `addresses`: the lowercased addresses the set takes (new or
    changed ones); an address a mailbox keeps, locked, is the unique index's to hold.
    """

    def __init__(self, mailboxes: list[Mailbox], addresses: Iterable[str] = ()):
        self._checked = set(addresses)
        self._holders: dict[str, set] = defaultdict(set)
        for chunk in _chunks(sorted(self._checked)):
            found = Mailbox.objects.annotate(address=Lower("email")).filter(address__in=chunk)
            for address, pk in found.values_list("address", "pk"):
                self._holders[address].add(pk)
        self._forward_rows = sum(1 for m in mailboxes if m.is_forward)
        self._targets: set | None = None
        self._forward_accepted: dict[int, bool] = {}  # forward rows accepted: usable or not
        self._user_ids = {m.user_id for m in mailboxes if m.user_id is not None}
        self._queue_ids = {m.queue_id for m in mailboxes if m.queue_id is not None}
        self._inactive_users: set | None = None
        self._queues: dict[int, tuple[bool, int | None]] | None = None
        self._organization: OrganizationSettings | None = None

    def full_clean(self, mailbox: Mailbox, *, fields=None) -> None:
        """mailbox.full_clean() answered from these facts: each field's own validation (of
        `fields` only, if given: the others were validated when they were written), then
        the model's rules in clean(). (Mailbox.validate_constraints is a no-op: clean()
        holds every constraint's rule; the unique indexes hold on the write.)"""
        exclude = _RELATION_FIELDS if fields is None else _FIELD_NAMES.difference(fields) | _RELATION_FIELDS
        mailbox.rule_facts = self
        try:
            mailbox.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        finally:
            mailbox.rule_facts = None

    def organization(self) -> OrganizationSettings:
        if self._organization is None:
            self._organization = OrganizationSettings.load()
        return self._organization

    def regarding_is_inactive(self, mailbox: Mailbox) -> bool:
        """M16, for a mailbox whose user or queue is not loaded."""
        if mailbox.kind == Mailbox.Kind.USER:
            if self._inactive_users is None:
                self._inactive_users = set()
                for chunk in _chunks(sorted(self._user_ids)):
                    inactive = User.objects.filter(pk__in=chunk, is_active=False).values_list("pk", flat=True)
                    self._inactive_users.update(inactive)
            return mailbox.user_id in self._inactive_users
        active, _owner = self._queue(mailbox.queue_id)
        return not active

    def queue_owner_id(self, queue_id: int) -> int | None:
        """The owner of a queue of the set's mailboxes (a queue mailbox's owner follows it)."""
        return self._queue(queue_id)[1]

    def _queue(self, queue_id: int) -> tuple[bool, int | None]:
        if self._queues is None:
            self._queues = {}
            for chunk in _chunks(sorted(self._queue_ids)):
                rows = Queue.objects.filter(pk__in=chunk).values_list("pk", "is_active", "owner_id")
                self._queues.update((pk, (active, owner)) for pk, active, owner in rows)
        return self._queues.get(queue_id, (True, None))

    def email_is_taken(self, mailbox: Mailbox) -> bool:
        address = mailbox.email.lower()
        if address not in self._checked:
            return False  # kept, locked: the unique index holds it
        return bool(self._holders.get(address, set()) - {_key(mailbox)})

    def forward_target_exists(self, mailbox: Mailbox) -> bool:
        accepted = self._forward_accepted
        targets = {pk for pk in self._forward_targets() if accepted.get(pk, True)}
        targets.update(pk for pk, usable in accepted.items() if usable)
        return any(pk != mailbox.pk for pk in targets)

    def _forward_targets(self) -> set:
        if self._targets is None:
            # Enough to still know of two after every forward row of the set has left.
            limit = self._forward_rows + 2
            self._targets = set(Mailbox.objects.usable_forward_targets().values_list("pk", flat=True)[:limit])
        return self._targets

    def accept(self, mailbox: Mailbox, before: Mailbox | None = None) -> None:
        key = _key(mailbox)
        if before is not None and before.email:
            self._holders[before.email.lower()].discard(key)
        if mailbox.email:
            self._holders[mailbox.email.lower()].add(key)
        if mailbox.is_forward and mailbox.pk is not None:
            # What usable_forward_targets() selects, for this row as it will be written.
            self._forward_accepted[mailbox.pk] = mailbox.is_active and mailbox.server_profile_id is not None


def _taken_addresses(changes: list[tuple[Mailbox, Mailbox]]) -> set[str]:
    return {
        after.email.lower()
        for before, after in changes
        if after.email and (before.pk is None or before.email.lower() != after.email.lower())
    }


@transaction.atomic
def mailboxes_save(
    changes: list[tuple[Mailbox, Mailbox]], *, actor=None, via: str = "", skip_refused: bool = False
) -> BulkOutcome:
    """`mailbox_save(after, expected_version=before.version)` for each (before, after)
    pair: `before` is the row as the editor read it, `after` the edited copy.

    All or nothing by default: the first record, in list order, that mailbox_save would
    refuse raises RecordFailed(index, error) with the error it would raise, and nothing
    of the call stays written. With `skip_refused`, such records are left as they are
    and listed in the outcome with their reasons."""
    outcome = BulkOutcome(model=Mailbox)
    for start in range(0, len(changes), CHUNK_SIZE):
        chunk = changes[start : start + CHUNK_SIZE]
        versions: dict[int, int] = {}
        for pks in _chunks([before.pk for before, _ in chunk]):
            locked = Mailbox.objects.select_for_update().filter(pk__in=pks)
            versions.update(locked.values_list("pk", "version"))
        saved = _save_chunk(chunk, versions, start=start, actor=actor, via=via, skip_refused=skip_refused)
        outcome.add(saved)
    return outcome


def _save_chunk(changes, versions: dict[int, int], *, start: int, actor, via: str, skip_refused: bool):
    """Check, apply the consequences of, and write one chunk of locked (before, after) pairs."""
    outcome = BulkOutcome(model=Mailbox)
    facts = RuleFacts([after for _, after in changes], _taken_addresses(changes))
    now = timezone.now()
    saved: list[tuple[Mailbox, Mailbox, list[str]]] = []
    for offset, (before, after) in enumerate(changes):
        try:
            if versions.get(before.pk) != before.version:
                raise StaleEditError(Mailbox.objects.get(pk=before.pk))
            changed = mailbox_change_prepare(before, after, actor=actor, facts=facts)
        except (ValidationError, StaleEditError) as error:
            if not skip_refused:
                raise RecordFailed(start + offset, error) from None
            if isinstance(error, StaleEditError):
                error = ValidationError(str(error))
            outcome.refuse(after.email, error)
            continue
        facts.accept(after, before)
        if not changed:
            outcome.unchanged += 1
            continue
        after.version, after.modified_on = before.version + 1, now
        saved.append((before, after, changed))
    _update_rows(saved, now)
    for _, after, changed in saved:
        if "email" in changed:
            regarding_email_follow(after)
    messages: dict[tuple, object] = {}  # rows share a handful of messages
    entries = []
    for _, after, changed in saved:
        key = tuple(changed)
        if key not in messages:
            messages[key] = history.change_message(Mailbox, changed, via)
        entries.append((after, CHANGE, messages[key]))
    insert_log_entries(actor, entries)
    outcome.updated += len(saved)
    return outcome


def _update_rows(saved: list[tuple[Mailbox, Mailbox, list[str]]], now) -> None:
    """Write what each `after` changed from its `before`, and its new version."""
    groups: dict[tuple, list[Mailbox]] = defaultdict(list)
    for before, after, _ in saved:
        written = history.changed_fields(before, after)
        attnames = (Mailbox._meta.get_field(name).attname for name in written)
        values = tuple((attname, getattr(after, attname)) for attname in attnames)
        groups[values].append(after)
    if len(groups) == 1 or len(groups) * ROWS_PER_GROUPED_UPDATE <= len(saved):
        for values, rows in groups.items():
            for pks in _chunks([row.pk for row in rows]):
                rows_of = Mailbox.objects.filter(pk__in=pks)
                rows_of.update(**dict(values), version=F("version") + 1, modified_on=now)
        return
    names = {Mailbox._meta.get_field(attname).name for values in groups for attname, _ in values}
    names = sorted(names | {"version", "modified_on"})
    rows = [after for _, after, _ in saved]
    created = [row.created_on for row in rows]
    # An upsert of rows that exist (they are locked): INSERT … ON CONFLICT (id) DO UPDATE
    # SET the changed columns. bulk_update would build a CASE expression per row and
    # field, about ten times the Python time (measured: 7.8 s against 0.7 s per thousand
    # rows of a configuration file, whose records each have their own values).
    Mailbox.objects.bulk_create(
        rows,
        batch_size=CHUNK_SIZE,
        update_conflicts=True,
        unique_fields=[Mailbox._meta.pk.name],
        update_fields=names,
    )
    for row, created_on in zip(rows, created, strict=True):
        row.created_on = created_on  # stamped anew by bulk_create, kept by the database


def insert_log_entries(actor, entries: list[tuple]) -> None:
    """The history entries of (obj, action flag, message) triples, as history's log_*
    functions write them one by one."""
    if actor is None or actor.pk is None or not entries:
        return
    rows = history.entry_rows(actor, entries)
    objs = [LogEntry(**dict(zip(history.ENTRY_FIELDS, row, strict=True))) for row in rows]
    LogEntry.objects.bulk_create(objs, batch_size=CHUNK_SIZE)


def _user_errors(user: User, taken_usernames: set[str]) -> ValidationError | None:
    """What user.full_clean(exclude=["password"]) raises, with the usernames taken given."""
    errors: dict = {}
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    if "username" not in errors and user.username in taken_usernames:
        errors["username"] = [user.unique_error_message(User, ("username",))]
    return ValidationError(errors) if errors else None


@transaction.atomic
def users_insert(users: list[User], *, actor=None, via: str = "") -> list[User]:
    """`user_insert` for each of `users` (unsaved, as `user_build` makes them): each is
    validated, saved with its mailbox (the organisation's defaults), and logged as added.
    All or nothing: the first refused record raises RecordFailed(index, error)."""
    taken = set()
    for chunk in _chunks([user.username for user in users]):
        taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
    failure = None
    accepted = []
    for index, user in enumerate(users):
        user.email = User.objects.normalize_email(user.email)
        try:
            check_can_change_roles(actor, user, [name for name in ROLE_FIELDS if getattr(user, name)])
            check_can_set_password(actor, user)
        except ValidationError as error:
            failure = RecordFailed(index, error)
            break
        error = _user_errors(user, taken)
        if error is not None:
            failure = RecordFailed(index, error)
            break
        taken.add(user.username)
        accepted.append(user)
    # A mailbox is validated with its user saved, as user_insert does; the users after
    # the first refused one never get that far.
    User.objects.bulk_create(accepted, batch_size=CHUNK_SIZE)
    org = OrganizationSettings.load()
    mailboxes = [mailbox_build(kind=Mailbox.Kind.USER, regarding=user, org=org) for user in accepted]
    facts = RuleFacts(mailboxes, {mailbox.email.lower() for mailbox in mailboxes if mailbox.email})
    for index, mailbox in enumerate(mailboxes):
        try:
            facts.full_clean(mailbox)
        except ValidationError as error:
            raise RecordFailed(index, regarding_errors(error)) from None
        facts.accept(mailbox)
    if failure is not None:
        raise failure
    Mailbox.objects.bulk_create(mailboxes, batch_size=CHUNK_SIZE)
    message = history.addition_message(via)
    insert_log_entries(actor, [(user, ADDITION, message) for user in accepted])
    return users


def mailboxes_change(
    mailbox_ids: Iterable[int],
    *,
    change: Callable[[Mailbox], None],
    actor=None,
    chunk_size: int = CHUNK_SIZE,
) -> BulkOutcome:
    """Apply `change` (which assigns attributes of one mailbox) to every mailbox in
    `mailbox_ids`, with every rule checked; rows that would break one stay unchanged.
    A chunk is a transaction of its own."""
    ids = sorted(set(mailbox_ids))
    outcome = BulkOutcome(model=Mailbox)
    for chunk in _chunks(ids, chunk_size):
        try:
            with transaction.atomic():
                outcome.add(_change_chunk(chunk, change, actor))
        except IntegrityError:
            # The database refused the chunk as a whole: the single-record path says which.
            outcome.add(_change_one_by_one(chunk, change, actor))
    return outcome


def _change_chunk(ids: list[int], change, actor) -> BulkOutcome:
    # Users and queues are not loaded: what the rules read of them comes from RuleFacts.
    rows = list(Mailbox.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    # An organisation has a few profiles and many mailboxes: each profile is read once.
    profiles = EmailServerProfile.objects.in_bulk({row.server_profile_id for row in rows} - {None})
    changes = []
    for row in rows:
        if row.server_profile_id is not None:
            row.server_profile = profiles[row.server_profile_id]
        after = copy.copy(row)
        change(after)
        if _PER_RECORD_FIELDS & set(history.changed_fields(row, after)):
            raise ValueError("A bulk change cannot alter a mailbox's address, kind or Regarding.")
        changes.append((row, after))
    versions = {row.pk: row.version for row in rows}  # just read, under lock
    return _save_chunk(changes, versions, start=0, actor=actor, via="", skip_refused=True)


def _change_one_by_one(ids: list[int], change, actor) -> BulkOutcome:
    """The single-record path, for a chunk the database refused as a whole."""

    def save(mailbox: Mailbox) -> Mailbox:
        change(mailbox)
        return mailbox_save(mailbox, actor=actor)

    return mailboxes_each(ids, save)


def mailboxes_set_server_profile(mailbox_ids: Iterable[int], *, server_profile, actor=None) -> BulkOutcome:
    """Set Server Profile… on many mailboxes (None clears it). M5, M7, M8 are checked,
    and the test results of each changed mailbox reset (M13)."""

    def change(mailbox: Mailbox) -> None:
        mailbox.server_profile = server_profile

    return mailboxes_change(mailbox_ids, change=change, actor=actor)


def mailboxes_set_delivery_methods(
    mailbox_ids: Iterable[int],
    *,
    incoming_method: str | None = None,
    outgoing_method: str | None = None,
    act_method: str | None = None,
    actor=None,
) -> BulkOutcome:
    """Set Delivery Methods… on many mailboxes; a method given as None is left as it is.
    Each kind's allowed methods (M3, M4, M8, M9, M10, M14) are checked per mailbox."""
    methods = {
        "incoming_method": incoming_method,
        "outgoing_method": outgoing_method,
        "act_method": act_method,
    }
    methods = {name: value for name, value in methods.items() if value is not None}

    def change(mailbox: Mailbox) -> None:
        for name, value in methods.items():
            setattr(mailbox, name, value)

    return mailboxes_change(mailbox_ids, change=change, actor=actor)


def mailboxes_each(mailbox_ids: Iterable[int], apply: Callable[[Mailbox], Mailbox]) -> BulkOutcome:
    """Call `apply(mailbox)` (a single-record service, which saves and returns the
    mailbox) for each mailbox, a transaction each; count what changed and list what a
    rule refused."""
    outcome = BulkOutcome(model=Mailbox)
    ids = sorted(set(mailbox_ids))
    for chunk in _chunks(ids, CHUNK_SIZE):
        for mailbox in Mailbox.objects.select_related("server_profile", "user", "queue").filter(pk__in=chunk):
            version = mailbox.version
            try:
                saved = apply(mailbox)
            except ValidationError as error:
                outcome.refuse(mailbox.email, error)
                continue
            if saved.version != version:
                outcome.updated += 1
            else:
                outcome.unchanged += 1
    return outcome

"""Set-wise twins of `user_insert` and `mailbox_save`, for callers that save thousands of
records at once (apply_config).

`users_insert(users)` does for each user what `user_insert` does, and
`mailboxes_save([(before, after), ...])` for each mailbox what `mailbox_save` does: the
same model validation (`clean_fields()` and `clean()`, which hold the rules), the same
consequences (M12, M13, a queue mailbox's owner following its queue), the same version
bump and the same history entry. Only the queries are shared — a call costs a fixed
handful per thousand records instead of about ten per record:

- M11 (an address is unique) and M14 (a usable forward mailbox exists) read other rows.
  `RuleFacts` fetches what they need once per call and answers them as each record
  comes, in list order: a record that takes an address, or stops being a forward target,
  counts for the records after it, exactly as if they had been saved one by one.
- Usernames are unique: one query per call finds those already taken.
- Foreign keys are not checked with a query per record: the caller assigns instances
  it loaded, and the database checks every key on the write. A changed mailbox's fields
  are validated where they changed; the others were validated when they were written.
- Rows, and their history entries, are written with one multi-row INSERT or UPDATE per
  batch. On PostgreSQL these are plain `INSERT … VALUES … RETURNING id` and
  `UPDATE … FROM (VALUES …)` statements: Django's bulk_create and bulk_update spend
  more time preparing each value (bulk_update builds a CASE expression per row and
  field) than the database spends on the write. Elsewhere (SQLite) they are used as is.

A caller that will set a new user's mailbox itself right after (apply_config, when its file
has an entry for that mailbox) can have `users_insert` hold the mailbox back: validated
with the organisation's defaults as always, but not written. Its entry then goes to
`mailboxes_save` as a change of that held mailbox, which writes it with one INSERT of its
final values instead of an INSERT and an UPDATE (on PostgreSQL an UPDATE is a whole new
row version and an entry in each of the table's indexes). The outcome is that of the two
writes: the same validation of both, version 2 and the same history entries. Until they
are written, held mailboxes are passed as `held` to every call, so that their addresses
count as taken (M11); the caller writes whatever it still holds (`held_mailboxes_insert`)
before anything else that could take their addresses or change them.

Each call is all or nothing (one savepoint): the first record, in list order, that the
single-record service would refuse raises `RecordFailed(index, error)`, carrying the
error that service would have raised, and nothing of the call stays written. A caller
that keeps its records in order therefore reports the same first error it would report
saving them one at a time.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping
from types import MappingProxyType

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxadmin.lookups import AnyOf
from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from mailboxes.services.mailboxes import (
    _RESET_BY_FIELD,
    _sync_regarding_email,
    initial_approval_status,
    mailbox_build,
    reset_test_results,
)
from mailboxes.services.users import regarding_errors

BATCH_SIZE = 1000
# Keep IN (...) lists under SQLite's limit on query parameters.
LOOKUP_CHUNK = 500
# Foreign keys: the database checks them (see the module docstring).
_RELATION_FIELDS = frozenset(f.name for f in Mailbox._meta.concrete_fields if f.is_relation)
_FIELD_NAMES = frozenset(f.name for f in Mailbox._meta.concrete_fields)
_REGARDING_FIXED = "A mailbox's kind and Regarding are fixed when it is created."
_NOTHING_HELD: Mapping[str, Mailbox] = MappingProxyType({})


class RecordFailed(Exception):
    """The record at `index` would be refused by the single-record service with `error`."""

    def __init__(self, index: int, error: Exception):
        super().__init__(index, error)
        self.index, self.error = index, error


def _chunks(items: list, size: int = LOOKUP_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _regarding(mailbox: Mailbox) -> tuple:
    return mailbox.kind, mailbox.user_id, mailbox.queue_id


def _key(mailbox: Mailbox):
    if mailbox.pk is not None:
        return mailbox.pk
    if mailbox.user_id is not None or mailbox.queue_id is not None:
        # Its user's or queue's one mailbox, not written yet: the same key for its copies.
        return ("new", mailbox.kind, mailbox.user_id, mailbox.queue_id)
    return ("new", id(mailbox))


def _is_forward_target(mailbox: Mailbox) -> bool:
    """What Mailbox.objects.usable_forward_targets() selects, for one row in memory."""
    return mailbox.is_forward and mailbox.is_active and mailbox.server_profile_id is not None


class RuleFacts:
    """M11, M14 and M16 for a list of mailboxes saved in order, from one query each.

    Handed to each mailbox as its `rule_facts` (see Mailbox.email_is_taken); `accept()`
    records that a mailbox was saved, so that the records after it see it. `held`
    mailboxes (validated, not written yet; by lowercased address) hold their addresses too.
    """

    def __init__(
        self,
        mailboxes: list[Mailbox],
        held: Mapping[str, Mailbox] = _NOTHING_HELD,
        *,
        addresses_as_loaded: bool = False,
    ):
        """`addresses_as_loaded`: every mailbox keeps the address it was loaded with,
        locked (a set-wise change of other fields). The unique index on the lowercased
        address already holds M11 for those, so it is not read again."""
        self._addresses_as_loaded = addresses_as_loaded
        addresses = [] if addresses_as_loaded else sorted({m.email.lower() for m in mailboxes if m.email})
        self._holders: dict[str, set] = defaultdict(set)
        for chunk in _chunks(addresses):
            found = Mailbox.objects.annotate(address=Lower("email")).filter(AnyOf(F("address"), chunk))
            for address, pk in found.values_list("address", "pk"):
                self._holders[address].add(pk)
            for address in chunk:
                if address in held:
                    self._holders[address].add(_key(held[address]))
        self._forward_rows = sum(1 for m in mailboxes if m.is_forward)
        self._targets: set | None = None
        self._user_ids = {m.user_id for m in mailboxes if m.user_id is not None}
        self._queue_ids = {m.queue_id for m in mailboxes if m.queue_id is not None}
        self._inactive_users: set | None = None
        self._queues: dict[int, tuple[bool, int | None]] | None = None

    def regarding_is_inactive(self, mailbox: Mailbox) -> bool:
        """M16, for a mailbox whose user or queue is not loaded."""
        if mailbox.kind == Mailbox.Kind.USER:
            if self._inactive_users is None:
                self._inactive_users = set(
                    User.objects.filter(AnyOf(F("pk"), self._user_ids), is_active=False).values_list(
                        "pk", flat=True
                    )
                )
            return mailbox.user_id in self._inactive_users
        active, _owner = self._queue(mailbox.queue_id)
        return not active

    def queue_owner_id(self, queue_id: int) -> int | None:
        """The owner of a queue of the list's mailboxes (a queue mailbox's owner follows it)."""
        return self._queue(queue_id)[1]

    def _queue(self, queue_id: int) -> tuple[bool, int | None]:
        if self._queues is None:
            rows = Queue.objects.filter(AnyOf(F("pk"), self._queue_ids)).values_list(
                "pk", "is_active", "owner_id"
            )
            self._queues = {pk: (active, owner) for pk, active, owner in rows}
        return self._queues.get(queue_id, (True, None))

    def email_is_taken(self, mailbox: Mailbox) -> bool:
        if self._addresses_as_loaded:
            return False
        return bool(self._holders.get(mailbox.email.lower(), set()) - {_key(mailbox)})

    def forward_target_exists(self, mailbox: Mailbox) -> bool:
        return any(pk != mailbox.pk for pk in self._forward_targets())

    def _forward_targets(self) -> set:
        if self._targets is None:
            # Enough to still know of two after every forward row of the list has left.
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
            if _is_forward_target(mailbox):
                self._forward_targets().add(mailbox.pk)
            else:
                self._forward_targets().discard(mailbox.pk)


def mailbox_errors(mailbox: Mailbox, facts: RuleFacts, *, only=None) -> ValidationError | None:
    """What mailbox.full_clean() raises, without a query per row: each field's own
    validation (of the fields `only` names, if given), then the model's rules in clean(),
    with `facts` answering M11 and M14. (Mailbox.validate_constraints is a no-op: clean()
    holds every constraint's rule.)"""
    errors: dict = {}
    exclude = _RELATION_FIELDS if only is None else _FIELD_NAMES.difference(only) | _RELATION_FIELDS
    mailbox.rule_facts = facts
    try:
        try:
            mailbox.clean_fields(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        try:
            mailbox.clean()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    finally:
        mailbox.rule_facts = None
    return ValidationError(errors) if errors else None


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
def users_insert(
    users: list[User],
    *,
    actor=None,
    via: str = "",
    hold: Callable[[User], bool] | None = None,
    held: Mapping[str, Mailbox] = _NOTHING_HELD,
) -> list[User]:
    """`user_insert` for each of `users` (unsaved, as `user_build` makes them): each is
    validated, saved with its mailbox (the organisation's defaults), and logged as added.

    The mailbox of a user for whom `hold(user)` is true is validated but not written:
    it is left unsaved as `user.mailbox`, for the caller to pass to `mailboxes_save` (see
    the module docstring). `held`: the mailboxes held by earlier calls and not written yet,
    by lowercased address."""
    taken = set()
    for chunk in _chunks([user.username for user in users]):
        taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
    failure = None
    accepted = []
    for index, user in enumerate(users):
        user.email = User.objects.normalize_email(user.email)
        error = _user_errors(user, taken)
        if error is not None:
            failure = RecordFailed(index, error)
            break
        taken.add(user.username)
        accepted.append(user)
    # A mailbox is validated with its user saved, as user_insert does; the users after
    # the first refused one never get that far.
    insert_rows(User, accepted)
    org = OrganizationSettings.load()
    mailboxes = [mailbox_build(kind=Mailbox.Kind.USER, regarding=user, org=org) for user in accepted]
    facts = RuleFacts(mailboxes, held)
    for index, mailbox in enumerate(mailboxes):
        error = mailbox_errors(mailbox, facts)
        if error is not None:
            raise RecordFailed(index, regarding_errors(error))
        facts.accept(mailbox)
    if failure is not None:
        raise failure
    if hold is not None:
        # A user without an id (a database that does not return them) has its mailbox written.
        mailboxes = [m for m in mailboxes if m.user.pk is None or not hold(m.user)]
    insert_rows(Mailbox, mailboxes)
    message = history.addition_message(via)
    insert_log_entries(actor, [(user, ADDITION, message) for user in accepted])
    return users


@transaction.atomic
def mailboxes_save(
    changes: list[tuple[Mailbox, Mailbox]],
    *,
    actor=None,
    via: str = "",
    held: Mapping[str, Mailbox] = _NOTHING_HELD,
) -> None:
    """`mailbox_save(after, expected_version=before.version)` for each (before, after)
    pair: `before` is the row as the editor read it, `after` the edited copy.

    The rows are locked and their versions compared in one query per chunk. Every write
    of a mailbox bumps its version, so a row still at `before.version` is `before`; one
    that has moved on raises StaleEditError, as mailbox_save would.

    A `before` without an id is a mailbox `users_insert` held back: `after` is written
    with one INSERT, as if `before` had been written and then changed. `held`: the held
    mailboxes not written yet, by lowercased address (these included)."""
    versions: dict[int, int] = {}
    for chunk in _chunks([before.pk for before, _ in changes if before.pk is not None]):
        locked = Mailbox.objects.select_for_update().filter(pk__in=chunk).values_list("pk", "version")
        versions.update(locked)
    facts = RuleFacts([after for _, after in changes], held)
    org = None
    now = timezone.now()
    saved: list[tuple[Mailbox, list[str]]] = []
    written_fields: set[str] = set()
    new: list[Mailbox] = []  # held mailboxes, written with their changes
    updated: list[Mailbox] = []
    for index, (before, mailbox) in enumerate(changes):
        if before.pk is None:
            new.append(mailbox)
        elif versions.get(before.pk) != before.version:
            raise RecordFailed(index, StaleEditError(Mailbox.objects.get(pk=before.pk)))
        if _regarding(mailbox) != _regarding(before):
            raise RecordFailed(index, ValidationError(_REGARDING_FIXED))
        if mailbox.kind == Mailbox.Kind.QUEUE:
            mailbox.owner_id = mailbox.queue.owner_id  # follows the queue
        # Fields left as they were were validated when they were written.
        error = mailbox_errors(mailbox, facts, only=history.changed_fields(before, mailbox))
        if error is not None:
            raise RecordFailed(index, error)
        changed = history.changed_fields(before, mailbox)
        stale = {w for field in changed for w in _RESET_BY_FIELD.get(field, ())}
        if stale:
            reset_test_results(mailbox, stale)
        if "email" in changed and mailbox.kind != Mailbox.Kind.FORWARD:
            org = org or OrganizationSettings.load()
            mailbox.approval_status = initial_approval_status(mailbox.kind, org)
        facts.accept(mailbox, before)
        if not changed:
            continue
        mailbox.version = before.version + 1
        mailbox.modified_on = now
        saved.append((mailbox, changed))
        if before.pk is not None:
            written_fields.update(history.changed_fields(before, mailbox, ignore=()))
            updated.append(mailbox)
    if new:
        insert_rows(Mailbox, new)
    if updated:
        update_rows(updated, sorted(written_fields))
    if saved:
        for mailbox, changed in saved:
            if "email" in changed:
                _sync_regarding_email(mailbox)
        messages = {}  # rows share a handful of messages
        for _, changed in saved:
            key = tuple(changed)
            if key not in messages:
                messages[key] = history.change_message(Mailbox, changed, via)
        insert_log_entries(actor, [(mailbox, CHANGE, messages[tuple(changed)]) for mailbox, changed in saved])


def held_mailboxes_insert(mailboxes: list[Mailbox]) -> None:
    """Write mailboxes `users_insert` held back, as it would have written them (they were
    validated there)."""
    insert_rows(Mailbox, mailboxes)


def update_rows(rows: list[Mailbox], names: list[str]) -> None:
    """Write the fields `names` of each of `rows` (all Mailbox rows), as save() would."""
    connection = connections[router.db_for_write(Mailbox)]
    if connection.vendor != "postgresql":
        Mailbox.objects.bulk_update(rows, names, batch_size=BATCH_SIZE)
        return
    fields = [Mailbox._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    table, pk = quote(Mailbox._meta.db_table), quote(Mailbox._meta.pk.column)
    columns = [quote(field.column) for field in fields]
    types = [field.db_type(connection) for field in fields]
    assignments = ", ".join(f"{c} = v.{c}::{t}" for c, t in zip(columns, types, strict=True))
    row_sql = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    preparers = [_preparer(field, connection, inserting=False) for field in fields]
    with connection.cursor() as cursor:
        for batch in _chunks(rows, BATCH_SIZE):
            params = []
            for row in batch:
                params.append(row.pk)
                params.extend(prepare(row) for prepare in preparers)
            cursor.execute(
                # Quoted names of our own table and columns; every value is a parameter.
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row_sql] * len(batch))}) "  # noqa: S608
                f"AS v({pk}, {', '.join(columns)}) WHERE {table}.{pk} = v.{pk}",
                params,
            )


# Fields whose database value is the attribute itself when it is of these types
# (get_db_prep_save would return it unchanged).
_PLAIN_VALUES = {
    "CharField": (str, type(None)),
    "TextField": (str, type(None)),
    "BooleanField": (bool, type(None)),
    "IntegerField": (int, type(None)),
    "PositiveIntegerField": (int, type(None)),
    "ForeignKey": (int, type(None)),
}


def _preparer(field, connection, *, inserting: bool = True):
    """A function giving the value INSERT (or UPDATE) stores for `field` of an object, as
    bulk_create (or bulk_update: no auto_now stamping, the caller sets the times) would."""
    attname, prepare = field.attname, field.get_db_prep_save
    if inserting and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)):
        return lambda obj: prepare(field.pre_save(obj, True), connection)
    plain_types = _PLAIN_VALUES.get(field.get_internal_type())
    if plain_types is not None:

        def plain(obj):
            value = getattr(obj, attname)
            return value if type(value) in plain_types else prepare(value, connection)

        return plain
    return lambda obj: prepare(getattr(obj, attname), connection)


def insert_rows(model, objs: list) -> None:
    """bulk_create(objs) of new rows, which get their ids, as save() would store them."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        return
    opts = model._meta
    fields = [f for f in opts.concrete_fields if f is not opts.auto_field and not f.generated]
    preparers = [_preparer(field, connection) for field in fields]
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        rows.append([prepare(obj) for prepare in preparers])
    for obj, pk in zip(objs, _insert_values(connection, model, fields, rows), strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias


def insert_log_entries(actor, entries: list[tuple]) -> None:
    """The history entries of (obj, action flag, message) triples, as history's log_*
    functions write them one by one."""
    if actor is None or actor.pk is None or not entries:
        return
    rows = history.entry_rows(actor, entries)
    connection = connections[router.db_for_write(LogEntry)]
    if connection.vendor != "postgresql":
        objs = [LogEntry(**dict(zip(history.ENTRY_FIELDS, row, strict=True))) for row in rows]
        LogEntry.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        return
    fields = [LogEntry._meta.get_field(name) for name in ("action_time", *history.ENTRY_FIELDS)]
    now = timezone.now()
    _insert_values(connection, LogEntry, fields, [(now, *row) for row in rows])


def _insert_values(connection, model, fields: list, rows: list[list]) -> list:
    """INSERT rows of database values for `fields`, a batch at a time; their new ids."""
    quote = connection.ops.quote_name
    opts = model._meta
    columns = ", ".join(quote(field.column) for field in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    ids = []
    with connection.cursor() as cursor:
        for batch in _chunks(rows, BATCH_SIZE):
            cursor.execute(
                # Quoted names of our own table and columns; every value is a parameter.
                f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES "  # noqa: S608
                f"{', '.join([row_sql] * len(batch))} RETURNING {quote(opts.pk.column)}",
                [value for row in batch for value in row],
            )
            ids.extend(pk for (pk,) in cursor.fetchall())
    return ids

"""Changes to many mailboxes at once, set-wise, with every rule checked.

The admin's Set Server Profile… and Set Delivery Methods… call these. Changing 100,000
mailboxes one `mailbox_save` at a time costs a dozen queries per row (full_clean()
validates each constraint with a query of its own); here a chunk of a thousand rows
costs six queries in all, and no rule is skipped:

1. The selected ids are read once and handled in chunks of `CHUNK_SIZE`. Each chunk is
   one transaction: its rows are loaded in one query and locked (`SELECT … FOR
   UPDATE`), so no other save can slip in between validation and the write; their
   server profiles (an organisation has a few) are read once.
2. The change is applied to each row in memory and the row is validated by the model
   itself: `clean_fields()` for the fields the change touched (the others were validated
   when they were written) and `clean()`, which holds the mailbox rules M1–M16. The
   rules that read other rows, M14 (a usable forward mailbox exists) and M16 (its user
   or queue is active), are answered by `bulk_save.RuleFacts`, fetched with one query
   each per chunk and handed to the row as its `rule_facts`, instead of one query per
   row (the same facts give a queue mailbox's owner, which follows its queue). M11 (the
   address is unique) needs no query: a bulk change keeps every row's address, read
   under lock, and the unique index on the lowercased address holds it.
   `Meta.constraints` are not re-evaluated in Python (Django runs one query per
   constraint per row for that): each rule they hold is also in `clean()`, and the
   database enforces them on the UPDATE all the same. Foreign keys are not re-checked
   per row either: the values assigned are loaded instances, and the database checks
   every key.
3. A row that breaks a rule is left as it is and reported with its reasons. The other
   rows get the consequences `mailbox_save` applies (M13: the test results of the
   workloads concerned reset; a queue mailbox's owner follows its queue), then are
   written with one `UPDATE … WHERE id IN (…)` per distinct set of new values (a chunk
   typically has one or two) and `version = version + 1`.
4. History: one LogEntry per changed row, the same "Changed <fields>" entry
   `mailbox_save` writes, inserted with one multi-row INSERT per chunk.
5. On PostgreSQL, outside a caller's transaction, two chunks run at once (`WORKERS`
   threads, a connection each): the chunks hold disjoint rows, so while the database
   writes one, Python validates the next.

If the database still refuses a chunk's UPDATE, the chunk is rolled back and redone row
by row through `mailbox_save`, so the outcome is never worse than the single-record path.

Bulk changes never touch a mailbox's address, kind or Regarding: those carry per-record
consequences (M12 keeps the user's or queue's address in step, M1 fixes the kind) and go
through `mailbox_save`.
"""

import json
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from django.contrib.admin.models import CHANGE
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import IntegrityError, connections, models, transaction
from django.db.models import F
from django.utils import timezone

from mailboxadmin import history
from mailboxadmin.lookups import AnyOf
from mailboxes.models import Mailbox
from mailboxes.services.bulk_save import RuleFacts, insert_log_entries, mailbox_errors
from mailboxes.services.mailboxes import _RESET_BY_FIELD, mailbox_save, reset_test_results
from serverprofiles.models import EmailServerProfile

CHUNK_SIZE = 1000
WORKERS = 2
# What a bulk change may not alter (see the module docstring).
_PER_RECORD_FIELDS = {"email", "kind", "user", "queue"}
# Written by the UPDATE itself rather than compared.
_BOOKKEEPING_FIELDS = {"version", "modified_on", "created_on"}
# Foreign keys are not re-validated per row (that is one query per row): the values a
# bulk change assigns are instances it loaded, and the database checks every key.
_RELATION_FIELDS = {f.name for f in Mailbox._meta.concrete_fields if f.is_relation}
_LABELS = {"password": "Password"}


def reasons(error: ValidationError, model: type[models.Model] = Mailbox) -> str:
    """A validation error as one readable line, each message after its field's label."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for name, messages in error.message_dict.items():
        label = _label(model, name)
        parts.extend(f"{label}: {message}" if label else message for message in messages)
    return " ".join(parts)


def _label(model: type[models.Model], name: str) -> str:
    if name == NON_FIELD_ERRORS:
        return ""
    if name in _LABELS:
        return _LABELS[name]
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


@dataclass
class Refusal:
    record: str
    reasons: str


@dataclass
class BulkOutcome:
    """What a bulk change did: how many rows changed, and which were refused and why."""

    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)

    def refuse(self, record: str, error: ValidationError) -> None:
        self.refused.append(Refusal(record, reasons(error)))

    def add(self, other: "BulkOutcome") -> None:
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused.extend(other.refused)

    def summary(self, verb: str = "updated", *, limit: int = 10) -> str:
        """ "3 updated, 2 refused: alice@…: <field>: <reason>; bob@…: …" """
        text = f"{self.updated} {verb}"
        if self.unchanged:
            text += f", {self.unchanged} unchanged"
        if self.refused:
            listed = "; ".join(f"{r.record}: {r.reasons}" for r in self.refused[:limit])
            more = f"; and {len(self.refused) - limit} more" if len(self.refused) > limit else ""
            text += f", {len(self.refused)} refused: {listed}{more}"
        return text + ("" if text.endswith(".") else ".")


def mailboxes_change(
    mailbox_ids: Iterable[int],
    *,
    change: Callable[[Mailbox], None],
    actor=None,
    chunk_size: int = CHUNK_SIZE,
    workers: int | None = None,
) -> BulkOutcome:
    """Apply `change` (which assigns attributes of one mailbox) to every mailbox in
    `mailbox_ids`, with every rule checked; rows that would break one stay unchanged."""
    ids = sorted(set(mailbox_ids))
    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    work = partial(_change_chunk_or_row_by_row, change=change, actor=actor)
    workers = default_workers() if workers is None else workers
    outcome = BulkOutcome()
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(partial(_in_own_connection, work), chunks):
                outcome.add(result)
    else:
        for chunk in chunks:
            outcome.add(work(chunk))
    return outcome


def default_workers() -> int:
    """Chunks are independent (disjoint rows, a transaction each), so on PostgreSQL two
    run at once: while the database writes one chunk, Python validates the next.
    Inside a caller's transaction (a test, say) there is one connection, so one."""
    connection = connections["default"]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return WORKERS


def _in_own_connection(work, chunk):
    try:
        return work(chunk)
    finally:
        connections.close_all()  # this worker thread's connection only


def _change_chunk_or_row_by_row(chunk: list[int], *, change, actor) -> BulkOutcome:
    try:
        with transaction.atomic():
            return _change_chunk(chunk, change, actor)
    except IntegrityError:
        return _change_one_by_one(chunk, change, actor)


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


_FIELDS = [f for f in Mailbox._meta.concrete_fields if f.name not in _BOOKKEEPING_FIELDS]
_values_of = operator.attrgetter(*(f.attname for f in _FIELDS))


def _change_chunk(ids: list[int], change, actor) -> BulkOutcome:
    outcome = BulkOutcome()
    # Users and queues are not loaded: what the rules read of them (M16, a queue
    # mailbox's owner) comes from RuleFacts, one query for the whole chunk.
    rows = list(Mailbox.objects.select_for_update().filter(AnyOf(F("pk"), ids)).order_by("pk"))
    # An organisation has a few profiles and many mailboxes: each profile is read once.
    profiles = EmailServerProfile.objects.in_bulk({row.server_profile_id for row in rows} - {None})
    before = {}
    for row in rows:
        if row.server_profile_id is not None:
            row.server_profile = profiles[row.server_profile_id]
        before[row.pk] = _values_of(row)
        change(row)
    # Addresses never change here (checked below), so M11 is the unique index's.
    facts = RuleFacts(rows, addresses_as_loaded=True)

    updates: dict[tuple, list[Mailbox]] = defaultdict(list)
    entries = []
    messages: dict[tuple, object] = {}  # the history message of each set of changed fields
    for row in rows:
        touched = _changed(before[row.pk], _values_of(row))
        if _PER_RECORD_FIELDS & {f.name for f in touched}:
            raise ValueError("A bulk change cannot alter a mailbox's address, kind or Regarding.")
        error = mailbox_errors(row, facts, only={f.name for f in touched})
        if error is not None:
            outcome.refuse(row.email, error)
            continue
        if row.kind == Mailbox.Kind.QUEUE:
            row.owner_id = facts.queue_owner_id(row.queue_id)  # follows the queue, as in mailbox_save
        changed = _changed(before[row.pk], _values_of(row))
        if not changed:
            outcome.unchanged += 1
            continue
        names = tuple(f.name for f in changed)
        if names not in messages:
            # Stored as LogEntry stores a list message: its JSON, encoded once per set.
            messages[names] = json.dumps(history.change_message(Mailbox, list(names)))
        entries.append((row, CHANGE, messages[names]))
        stale = {w for f in changed for w in _RESET_BY_FIELD.get(f.name, ())}
        reset_test_results(row, stale)
        new_values = tuple(
            (f.attname, value)
            for f, old, value in zip(_FIELDS, before[row.pk], _values_of(row), strict=True)
            if old != value
        )
        updates[new_values].append(row)

    now = timezone.now()
    for new_values, group in updates.items():
        Mailbox.objects.filter(AnyOf(F("pk"), [row.pk for row in group])).update(
            **dict(new_values), version=F("version") + 1, modified_on=now
        )
        for row in group:
            row.version += 1
    outcome.updated += len(entries)
    insert_log_entries(actor, entries)
    return outcome


def _changed(old: tuple, new: tuple) -> list[models.Field]:
    return [f for f, a, b in zip(_FIELDS, old, new, strict=True) if a != b]


def _change_one_by_one(ids: list[int], change, actor) -> BulkOutcome:
    """The single-record path, for a chunk the database refused as a whole."""

    def save(mailbox: Mailbox) -> Mailbox:
        change(mailbox)
        return mailbox_save(mailbox, actor=actor)

    return mailboxes_each(ids, save)


def mailboxes_each(mailbox_ids: Iterable[int], apply: Callable[[Mailbox], Mailbox]) -> BulkOutcome:
    """Call `apply(mailbox)` (a single-record service, which saves and returns the
    mailbox) for each mailbox, a transaction each; count what changed and list what a
    rule refused."""
    outcome = BulkOutcome()
    ids = sorted(set(mailbox_ids))
    for start in range(0, len(ids), CHUNK_SIZE):
        chunk = ids[start : start + CHUNK_SIZE]
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

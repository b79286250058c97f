"""Maximum Concurrent Connections, held across every process and host (A6, section 9).

Whoever connects to a profile's servers (Test & Enable in a worker or a command, Test
Connection, later mail processing) first claims one of the profile's slots:

    with connection_slot(profile):
        check_incoming(endpoint)

A slot is a row of ConnectionSlot, numbered 1..max_connections. Claiming is a single
conditional UPDATE ("take these free slots if they are still free or their lease has
expired"): the database lets exactly one of two racing claimants change a row, on
PostgreSQL (row lock, the condition re-checked after the wait) as on SQLite (one writer
at a time), so the same code holds on one host and on many. A run that tests many
mailboxes claims, renews and gives back several slots in one statement each
(`connection_slots_claim`, `connection_slots_renew`, `connection_slots_release`).
No transaction stays open while a claimant waits or connects. Each claim carries a lease
as long as the connection can legitimately last (the profile's timeout for every step of
a dialogue, plus a margin): a process killed while holding a slot loses it when the
lease expires, and the next claimant takes it.
Leases are reckoned by the database's clock, the one clock every host shares.

Why not PostgreSQL advisory locks: they belong to a database session, so a slot would pin
one pooled connection for the whole mail dialogue (and Django's per-thread connections
make that awkward); SQLite has nothing like them; and a table can be read to see who
holds what. A profile that is not saved yet has no slots to count against: its Test
Connection is not counted (there is nothing else connecting for it either).
"""

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from serverprofiles.connectors.endpoints import DIALOGUE_TIMEOUTS
from serverprofiles.models import ConnectionSlot, EmailServerProfile

# Seconds added to a lease beyond the longest a dialogue may last: time to record the
# result and hand the slot back.
LEASE_MARGIN_SECONDS = 10
# A claimant that finds every slot taken tries again after this many seconds, doubling
# up to the maximum (with jitter, so waiting processes do not retry in step).
FIRST_RETRY_SECONDS = 0.02
MAX_RETRY_SECONDS = 0.5


class NoConnectionSlot(Exception):
    """Every connection the profile allows stayed in use for as long as we could wait."""

    def __init__(self, profile: EmailServerProfile, waited: float):
        self.profile, self.waited = profile, waited
        super().__init__(
            f"waited {waited:.0f} s for a free connection to the servers of the profile "
            f'"{profile.name}", but all {profile.max_connections} that its Maximum Concurrent '
            "Connections allows stayed in use (by tests or mail processing in this or other "
            "processes). Test again later, or raise Maximum Concurrent Connections."
        )


@dataclass(frozen=True)
class HeldSlot:
    """A claimed slot: give it back with connection_slot_release()."""

    slot_id: int
    profile_id: int
    number: int
    holder: str


def connection_slot_lease(profile: EmailServerProfile, *, connections: int = 1) -> timedelta:
    """How long a claim lasts: `connections` dialogues one after another, each at most
    DIALOGUE_TIMEOUTS times the profile's timeout, plus a margin."""
    dialogue = profile.timeout_ms / 1000 * DIALOGUE_TIMEOUTS
    return timedelta(seconds=dialogue * connections + LEASE_MARGIN_SECONDS)


def connection_slot_wait_limit(profile: EmailServerProfile) -> float:
    """How long a claimant waits for a slot, in seconds: two leases. A holder gives its
    slot back within one lease, or loses it, so a claimant that still finds every slot
    taken after two is facing others that keep the server busy, not a stuck slot."""
    return 2 * connection_slot_lease(profile).total_seconds()


def connection_slot_claim(profile: EmailServerProfile, *, lease: timedelta | None = None) -> HeldSlot | None:
    """Claim a free (or expired) slot of the saved `profile` now, without waiting.

    Returns None when every slot is taken. The cap is the saved Maximum Concurrent
    Connections (a form's unsaved value does not count).
    """
    held = connection_slots_claim(profile, 1, lease=lease)
    return held[0] if held else None


def connection_slots_claim(
    profile: EmailServerProfile, count: int, *, lease: timedelta | None = None
) -> list[HeldSlot]:
    """Claim up to `count` free (or expired) slots of the saved `profile` now, without
    waiting: those it got (none when every slot is taken). Two statements, however many."""
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"
    expires_on = _from_now(lease if lease is not None else connection_slot_lease(profile))
    claimable = Q(holder="") | Q(lease_expires_on__lt=Now())
    for _attempt in range(2):
        candidates = (
            ConnectionSlot.objects.filter(profile_id=profile.pk, number__lte=F("profile__max_connections"))
            .filter(claimable)
            .order_by("number")
            .values("pk")[:count]
        )
        # The condition again on each row: of the claimants racing for a row, only one
        # changes it (PostgreSQL re-checks it on the row once the other's lock is gone).
        if ConnectionSlot.objects.filter(claimable, pk__in=candidates).update(
            holder=holder, lease_expires_on=expires_on
        ):
            return [
                HeldSlot(slot_id, profile.pk, number, holder)
                for slot_id, number in ConnectionSlot.objects.filter(holder=holder)
                .order_by("number")
                .values_list("pk", "number")
            ]
        if not _create_slots(profile.pk):
            return []
    return []


def _from_now(lease: timedelta) -> ExpressionWrapper:
    """The database's time now plus `lease`."""
    return ExpressionWrapper(Now() + Value(lease), output_field=DateTimeField())


def _create_slots(profile_id: int) -> bool:
    """Make the profile's missing slots 1..max_connections; False if none were missing."""
    cap = EmailServerProfile.objects.filter(pk=profile_id).values_list("max_connections", flat=True).first()
    if cap is None:
        return False
    existing = ConnectionSlot.objects.filter(profile_id=profile_id, number__lte=cap).count()
    if existing >= cap:
        return False
    ConnectionSlot.objects.bulk_create(
        [ConnectionSlot(profile_id=profile_id, number=number) for number in range(1, cap + 1)],
        ignore_conflicts=True,  # another process may be making them at the same moment
    )
    return True


def connection_slot_release(held: HeldSlot) -> None:
    """Give a slot back, unless its lease expired and someone else has taken it since."""
    mine = ConnectionSlot.objects.filter(pk=held.slot_id, holder=held.holder)
    mine.update(holder="", lease_expires_on=None)


def _mine(held: list[HeldSlot]) -> Q:
    """The rows of `held` that are still held by us (each claim has its own holder)."""
    by_holder: dict[str, list[int]] = {}
    for slot in held:
        by_holder.setdefault(slot.holder, []).append(slot.slot_id)
    mine = Q(pk__in=[])
    for holder, ids in by_holder.items():
        mine |= Q(holder=holder, pk__in=ids)
    return mine


def connection_slots_release(held: list[HeldSlot]) -> None:
    """Give several slots back in one statement (see connection_slot_release)."""
    if held:
        ConnectionSlot.objects.filter(_mine(held)).update(holder="", lease_expires_on=None)


def connection_slots_renew(held: list[HeldSlot], lease: timedelta) -> list[HeldSlot]:
    """Extend the leases of several held slots in one statement; returns those lost
    meanwhile (their lease expired and someone else took them)."""
    if not held:
        return []
    renewed = ConnectionSlot.objects.filter(_mine(held)).update(lease_expires_on=_from_now(lease))
    if renewed == len(held):
        return []
    kept = set(ConnectionSlot.objects.filter(_mine(held)).values_list("pk", "holder"))
    return [slot for slot in held if (slot.slot_id, slot.holder) not in kept]


def connection_slot_renew(held: HeldSlot, lease: timedelta) -> HeldSlot | None:
    """Extend a held slot's lease (a long mail-processing session); None if it was lost."""
    if ConnectionSlot.objects.filter(pk=held.slot_id, holder=held.holder).update(
        lease_expires_on=_from_now(lease)
    ):
        return held
    return None


@contextmanager
def connection_slot(
    profile: EmailServerProfile, *, lease: timedelta | None = None, wait: float | None = None
) -> Iterator[HeldSlot | None]:
    """Hold one of `profile`'s connection slots for the duration of the block.

    Waits (without holding a transaction open) at most `wait` seconds, by default
    connection_slot_wait_limit(profile), then raises NoConnectionSlot. Yields None for a
    profile that is not saved. The slot is given back however the block ends.
    """
    if profile.pk is None:
        yield None
        return
    limit = connection_slot_wait_limit(profile) if wait is None else wait
    started = time.monotonic()
    delay = FIRST_RETRY_SECONDS
    while (held := connection_slot_claim(profile, lease=lease)) is None:
        left = started + limit - time.monotonic()
        if left <= 0:
            raise NoConnectionSlot(profile, limit)
        time.sleep(min(left, delay * random.uniform(0.5, 1.5)))
        delay = min(delay * 2, MAX_RETRY_SECONDS)
    try:
        yield held
    finally:
        connection_slot_release(held)

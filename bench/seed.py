"""Seed a PostgreSQL database with SIZE mailboxes through COPY (the fast path).

The mix: 90 % user mailboxes (with their users), 8 % queue mailboxes (with queues),
2 % forward mailboxes, spread over 20 server profiles; about 5 % inactive, a spread of
approval states and test results. With `credential_token`, every mailbox stores
credentials (Allow to Use Credentials, its address as user name, and that one token as
its encrypted password), so key rotation has a credential per mailbox to re-encrypt.
Every row satisfies the model rules and the
database constraints (COPY checks every constraint on every row).
"""

import io
import random
from datetime import UTC, datetime

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction

from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from serverprofiles.models import EmailServerProfile, ServerType

FIRST = [
    "Alice",
    "Bob",
    "Carol",
    "Dan",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yara",
]
LAST = [
    "Smith",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Lopez",
    "Wilson",
    "Moore",
    "Taylor",
    "Thomas",
    "Lee",
    "Harris",
    "Clark",
    "Lewis",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
]
CHUNK = 50_000
# One user (and mailbox) in 21 is inactive. Not one in 20: the first name cycles every 20,
# so that would make every "Alice …" inactive and nothing else, the first 5 % of the list
# in name order; 21 spreads the inactive ones over every name, as in real data.
INACTIVE_EVERY = 21


def _copy(model, rows, fields: list[str]) -> int:
    """COPY rows (tuples in `fields` order; None for NULL) into the model's table."""
    table = model._meta.db_table
    columns = [model._meta.get_field(f).column for f in fields]
    count = 0
    with connection.cursor() as cursor:
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join("\\N" if v is None else _text(v) for v in row))
            buffer.write("\n")
            count += 1
            if count % CHUNK == 0:
                _flush(cursor, table, columns, buffer)
                buffer = io.StringIO()
        _flush(cursor, table, columns, buffer)
    return count


def _text(value) -> str:
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _flush(cursor, table, columns, buffer):
    buffer.seek(0)
    cursor.cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN', buffer)


def _reset_sequence(model):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        sequence = f"pg_get_serial_sequence('\"{table}\"', 'id')"
        cursor.execute(f'SELECT setval({sequence}, COALESCE(MAX(id), 1)) FROM "{table}"')  # noqa: S608


@transaction.atomic
def seed(size: int, *, seed_value: int = 7, credential_token: str = "") -> dict[str, int]:
    if connection.vendor != "postgresql":
        raise RuntimeError("The benchmark seeds PostgreSQL only.")
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    profiles = []
    for i in range(20):
        imap = i % 4 != 3
        profile = EmailServerProfile(
            name=f"Bench profile {i:02d}",
            server_type=ServerType.IMAP_SMTP if imap else ServerType.POP3_SMTP,
            incoming_server=f"{'imap' if imap else 'pop'}{i}.bench.test",
            outgoing_server=f"smtp{i}.bench.test",
        )
        profile.full_clean()
        profile.save()
        profiles.append(profile.pk)
    settings = OrganizationSettings.load()
    settings.default_server_profile_id = profiles[0]
    settings.save()

    n_users = size * 90 // 100
    n_queues = size * 8 // 100
    n_forward = size - n_users - n_queues
    base_user = (User.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    base_queue = (Queue.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    password = make_password(None)

    def person(i):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        return first, last, f"{first.lower()}.{last.lower()}{i}@bench{i % 50}.test"

    user_fields = [
        "id",
        "password",
        "is_superuser",
        "username",
        "email",
        "is_staff",
        "is_active",
        "date_joined",
        "full_name",
        "version",
    ]
    _copy(
        User,
        (
            (
                base_user + i,
                password,
                False,
                f"bench{i}",
                person(i)[2],
                False,
                i % INACTIVE_EVERY != 0,
                now,
                f"{person(i)[0]} {person(i)[1]} {i}",
                1,
            )
            for i in range(n_users)
        ),
        user_fields,
    )
    queue_fields = [
        "id",
        "name",
        "queue_type",
        "email",
        "owner_id",
        "description",
        "convert_incoming",
        "is_active",
        "version",
        "created_on",
        "modified_on",
    ]
    _copy(
        Queue,
        (
            (
                base_queue + i,
                f"Queue {i}",
                "public",
                f"queue{i}@queues{i % 50}.test",
                base_user + (i % n_users),
                "",
                "responses",
                True,
                1,
                now,
                now,
            )
            for i in range(n_queues)
        ),
        queue_fields,
    )

    mailbox_fields = [
        "kind",
        "name",
        "owner",
        "email",
        "delete_after_processing",
        "user",
        "queue",
        "state",
        "allow_credentials",
        "username",
        "password_ciphertext",
        "server_profile",
        "incoming_method",
        "outgoing_method",
        "act_method",
        "approval_status",
        "incoming_status",
        "outgoing_status",
        "act_status",
        "incoming_error",
        "outgoing_error",
        "act_error",
        "enabled_incoming",
        "enabled_outgoing",
        "enabled_act",
        "version",
        "created_on",
        "modified_on",
    ]
    statuses = ["not-run"] * 6 + ["success"] * 3 + ["failure"]
    approvals = ["approved"] * 6 + ["pending"] * 3 + ["rejected"]

    def credentials(email):
        return (True, email, credential_token) if credential_token else (False, "", "")

    def mailbox_rows():
        for i in range(n_users):
            first, last, email = person(i)
            active = i % INACTIVE_EVERY != 0
            incoming = rng.choice(statuses)
            yield (
                "user",
                f"{first} {last} {i}",
                base_user + i,
                email,
                False,
                base_user + i,
                None,
                "active" if active else "inactive",
                *credentials(email),
                rng.choice(profiles),
                "server-side-sync",
                "server-side-sync",
                "none",
                rng.choice(approvals),
                incoming,
                rng.choice(statuses),
                "not-run",
                "Authentication failed." if incoming == "failure" else "",
                "",
                "",
                incoming == "success",
                False,
                False,
                1,
                now,
                now,
            )
        for i in range(n_queues):
            yield (
                "queue",
                f"Queue {i}",
                base_user + (i % n_users),
                f"queue{i}@queues{i % 50}.test",
                i % 2 == 0,
                None,
                base_queue + i,
                "active",
                *credentials(f"queue{i}@queues{i % 50}.test"),
                rng.choice(profiles),
                "server-side-sync",
                "server-side-sync",
                "none",
                rng.choice(approvals),
                rng.choice(statuses),
                "not-run",
                "not-run",
                "",
                "",
                "",
                False,
                False,
                False,
                1,
                now,
                now,
            )
        for i in range(n_forward):
            yield (
                "forward",
                f"Forward {i}",
                base_user,
                f"forward{i}@fwd{i % 50}.test",
                True,
                None,
                None,
                "active",
                *credentials(f"forward{i}@fwd{i % 50}.test"),
                rng.choice(profiles),
                "server-side-sync",
                "none",
                "none",
                "empty",
                rng.choice(statuses),
                "not-run",
                "not-run",
                "",
                "",
                "",
                False,
                False,
                False,
                1,
                now,
                now,
            )

    _copy(Mailbox, mailbox_rows(), mailbox_fields)
    for model in (User, Queue, Mailbox):
        _reset_sequence(model)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"users": n_users, "queues": n_queues, "forward": n_forward, "mailboxes": size}

"""`make bench` for /emails/ (issue 17): seed EMAILS emails (default: SIZE) on PostgreSQL
in one INSERT … SELECT generate_series, then measure the first page, a page deep in the
keyset, a mailbox filter and searches, each p50 ≤ 30 ms with a fixed query count.

Raw messages are not written: the list never reads them (the seeded rows name none).
Half the emails go to 100 busy mailboxes (the mailbox filter measures one of them), the
other half spread over every user and queue mailbox; one Received On every 30 seconds
back from now, so a million span almost a year.
"""

import time

from django.db import connection, transaction

from bench import keep
from bench.measure import ms, p50, say
from bench.report import Row
from bench.scenarios import _client, _queries, _time_paths
from mailboxadmin.paginator import encode_cursor
from mailboxes.models import Email

BUSY_MAILBOXES = 100
SEARCHES = {
    # (label, q): one customer's address matches 1 email in 50,000; "invoice" a quarter of
    # them; a word no email holds, none (the whole index is searched and found empty).
    "a customer's address": "customer4711@",
    "a common word": "invoice",
    "a word no email holds": "zebracorn",
}
BUDGET = 0.030

# Raw SQL, in the bench only: generating a million rows inside PostgreSQL (INSERT …
# SELECT generate_series) takes seconds; through the ORM's bulk_create, minutes. (%% is
# a modulo: the query takes parameters.)
_INSERT = """
WITH boxes AS (
    SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, user_id, queue_id, email
    FROM mailboxes_mailbox WHERE kind <> 'forward'
), total AS (SELECT count(*) AS c FROM boxes)
INSERT INTO mailboxes_email (
    mailbox_id, regarding_user_id, regarding_queue_id, digest, message_id, subject,
    from_address, to_addresses, cc_addresses, sent_on, received_on, size, headers_only,
    malformed, attachments, raw, recorded_on
)
SELECT b.id, b.user_id, b.queue_id,
       md5(g::text) || md5((-g)::text),
       '<bench-' || g || '@client' || (g %% 500) || '.test>',
       (ARRAY['Invoice ', 'Re: Order ', 'Meeting notes, week ', 'Question about ticket '])[g %% 4 + 1] || g,
       'Customer ' || (g %% 50000) || ' <customer' || (g %% 50000) || '@client' || (g %% 500) || '.test>',
       b.email, '',
       now() - g * interval '30 seconds' - interval '1 minute',
       now() - g * interval '30 seconds',
       2000 + (g * 37) %% 50000, g %% 997 = 0, g %% 1999 = 0, '[]'::jsonb, '',
       now() - g * interval '30 seconds'
FROM generate_series(%s, %s) AS g
JOIN boxes b ON b.n = CASE WHEN g %% 2 = 0 THEN (g / 2) %% %s
                          ELSE (g::bigint * 7919) %% (SELECT c FROM total) END
"""
# The indexes that are neither the primary key nor a constraint: dropped for the insert
# and built again after it, which is several times faster than keeping them up to date
# row by row (the three trigram indexes most of all).
_REBUILT_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'mailboxes_email'
  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'mailboxes_email'::regclass)
"""
CHUNK = 250_000


def seed_emails(count: int) -> float:
    """Insert `count` emails; the seconds it took, indexes and VACUUM ANALYZE included."""
    started = time.perf_counter()
    # One transaction: a run stopped half-way (^C, an error) leaves neither rows nor a
    # table without its indexes (PostgreSQL's DDL is transactional).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILT_INDEXES)
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for first in range(0, count, CHUNK):
            cursor.execute(_INSERT, [first, min(first + CHUNK, count) - 1, BUSY_MAILBOXES])
        # Django's foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED), and
        # PostgreSQL builds no index on a table with checks still pending: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for _name, definition in indexes:
            cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE mailboxes_email")
    return time.perf_counter() - started


def _busiest_mailbox() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM mailboxes_mailbox WHERE kind <> 'forward' ORDER BY id LIMIT 1")
        return cursor.fetchone()[0]


def _seed_once(count: int) -> str:
    """Seed `count` emails, unless a kept cluster (BENCH_KEEP) holds them already (any
    other emails there are deleted first)."""
    kept = keep.load()
    if kept.get("emails") == count:
        say(f"reusing the kept {count:,} emails (BENCH_KEEP)")
        return "kept"
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM mailboxes_email")
    say(f"seeding {count:,} emails (INSERT … SELECT generate_series, then the indexes)")
    seconds = seed_emails(count)
    say(f"seeded {count:,} emails in {seconds:.1f} s")
    if kept:
        keep.save({**kept, "emails": count})
    return f"seeded in {seconds:.0f} s"


def emails_list(count: int, *, runs: int) -> list[Row]:
    seeded = _seed_once(count)
    say(f"/emails/: {runs} runs each")
    client = _client()

    # A page nine tenths of the way down, as its "Older" link would name it (the bench
    # finds the row once with an OFFSET; the page itself seeks to it through the index).
    deep_row = Email.objects.order_by("-received_on", "-id").values_list("received_on", "id")[count * 9 // 10]
    deep = f"/emails/?after={encode_cursor(list(deep_row))}"
    mailbox = _busiest_mailbox()
    paths = {
        "first page": "/emails/",
        "a page 90 % deep (keyset)": deep,
        "a mailbox filter": f"/emails/?mailbox={mailbox}",
        **{f"search, {label}": f"/emails/?q={q}" for label, q in SEARCHES.items()},
    }
    samples = _time_paths(client, list(paths.values()), runs)
    rows = []
    for label, path in paths.items():
        value = p50(samples[path])
        queries, _ = _queries(client, path)
        rows.append(
            Row(
                f"/emails/ {label} p50 ≤ 30 ms, fixed query count",
                f"{ms(value)}; {queries} queries",
                value <= BUDGET,
                f"{count:,} emails ({seeded}); {path}; p50 of {runs} runs.",
            )
        )
    return rows

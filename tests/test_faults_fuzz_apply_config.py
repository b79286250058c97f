"""`apply_config` with random and hostile files: a one-line error naming the record and
the field, or a clean apply; never a traceback, never a partial write.

Hypothesis starts from the specification's example file and breaks it: values of the
wrong type, hostile strings (NUL, control characters, markup, SQL, 100 KB), numbers out
of every range, keys left out or made up, records and sections replaced by anything,
records given twice. Each example runs in a transaction that is rolled back afterwards;
a refused file (or any --dry-run) must leave every row as it was.

The last tests run the real command in a process of its own on files a JSON parser
chokes on, to see the exit status and what reaches standard error.
"""

import copy
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import example, given
from hypothesis import strategies as st

from mailboxes.config.document import SECTIONS
from mailboxes.config.schema import accepted_keys
from tests.fixtures.commands import SPEC_EXAMPLE
from tests.fixtures.faults import hostile_values, hypothesis_settings, run_manage, snapshot, sqlite_env

pytestmark = pytest.mark.django_db

SECRET = "Fwd-Fuzz-Secret-9!"
BASE = SPEC_EXAMPLE
LISTS = ["server_profiles", "users", "queues", "mailboxes"]
ALL_CODES = sorted({code for keys in SECTIONS.values() for key in keys for code in key.codes})

# A record is named by its section, its place and its identity; a file-level problem by
# what is wrong with the file or a section.
RECORD = r"(settings|(server_profiles|users|queues|mailboxes)\[\d+\]( \([^\n]*\))?)"
NAMES_RECORD_AND_FIELD = re.compile(rf"^{RECORD}: ([a-z_]+: |unknown keys? '[^\n]*'; accepted: )")
NAMES_FILE_PROBLEM = re.compile(
    r"^(The file must hold one JSON object|Unknown sections? |"
    r"(settings|server_profiles|users|queues|mailboxes): must be a JSON (object|list)\.$|"
    rf"{RECORD}: must be a JSON object\.$)"
)


def json_values():
    """Any JSON value: hostile strings, numbers past every range, nesting."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_values(),
        st.sampled_from(["2025-13-45T25:61:00", "0000-00-00T00:00:00", "9999-12-31T23:59:59+99:99"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


def values_for(key):
    """Values of the type `key` takes, chosen to break the rules behind it: hostile text,
    numbers past every range, codes of the wrong field, names of nothing."""
    if key is None or key.kind == "secret":
        return json_values()
    by_kind = {
        "str": hostile_values(),
        "int": st.integers(min_value=-(2**70), max_value=2**70),
        "bool": st.booleans(),
        "forward": st.booleans(),
        "state": st.booleans(),
        "code": st.sampled_from(ALL_CODES),
        "datetime": st.sampled_from(
            ["2025-01-31T00:00:00+00:00", "2025-13-45T25:61:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59"]
        ),
        "user": st.sampled_from(["alice", "nobody", "", "ALICE", "alice\x00"]) | hostile_values(),
        "profile": st.sampled_from(["Contoso IMAP", "contoso imap", "Nobody's"]) | hostile_values(),
    }
    return by_kind[key.kind]


@st.composite
def broken_files(draw):
    """The example file with one to three things broken."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        section = draw(st.sampled_from(["settings", *LISTS]))
        how = draw(st.sampled_from(["set", "set", "set", "drop", "record", "section", "twice", "file"]))
        if how == "file":
            return draw(json_values())
        shape = dict if section == "settings" else list  # an earlier draw may have replaced it
        if how == "section" or not isinstance(data.get(section), shape):
            data[section] = draw(json_values())
            continue
        if section == "settings":
            record = data[section]
        else:
            if not data[section]:
                continue
            index = draw(st.integers(min_value=0, max_value=len(data[section]) - 1))
            if how == "record":
                data[section][index] = draw(json_values())
                continue
            if how == "twice":
                data[section].append(copy.deepcopy(data[section][index]))
                continue
            record = data[section][index]
        if not isinstance(record, dict):
            continue
        key = draw(st.sampled_from(sorted(accepted_keys(SECTIONS[section]) | {"password", "id", "kind"})))
        if how == "drop":
            record.pop(key, None)
        elif draw(st.booleans()):
            record[key] = draw(json_values())
        else:  # the right type, the wrong value
            record[key] = draw(values_for(next((k for k in SECTIONS[section] if k.name == key), None)))
    return data


def assert_one_line_naming_the_record_and_field(message: str) -> None:
    assert message.isprintable(), f"a line break or control character in {message!r}"
    assert NAMES_RECORD_AND_FIELD.match(message) or NAMES_FILE_PROBLEM.match(message), message
    assert SECRET not in message


@pytest.fixture
def apply_file(tmp_path, monkeypatch):
    """Apply `data` (written as JSON) in a transaction that is then rolled back; returns
    (the error message or None, the rows before, the rows after)."""
    monkeypatch.setenv("FWD_PASSWORD", SECRET)
    path = tmp_path / "config.json"

    def apply(data, *options):
        path.write_text(json.dumps(data), encoding="utf-8")
        out, err = StringIO(), StringIO()
        with transaction.atomic():
            before = snapshot()
            try:
                call_command("apply_config", str(path), *options, stdout=out, stderr=err)
                message = None
            except CommandError as error:
                message = str(error)
            after = snapshot()
            transaction.set_rollback(True)
        assert SECRET not in out.getvalue() + err.getvalue()
        return message, before, after

    return apply


def test_the_unbroken_example_applies(apply_file):
    message, before, after = apply_file(BASE)

    assert message is None
    assert after != before


@hypothesis_settings(max_examples=60)
@given(data=broken_files(), dry_run=st.booleans())
@example(data=[], dry_run=False)
@example(data={**BASE, "users": [{**BASE["users"][0], "username": "a\nb"}]}, dry_run=False)
@example(data={**BASE, "users": [{**BASE["users"][0], "full_name": "x" * 100_000}]}, dry_run=False)
@example(data={**BASE, "users": [{**BASE["users"][0], "email": "\x00@contoso.test"}]}, dry_run=False)
@example(
    data={**BASE, "server_profiles": [{**BASE["server_profiles"][0], "incoming_port": 2**80}]}, dry_run=False
)
@example(data={**BASE, "server_profiles": [{**BASE["server_profiles"][0], "name": "\x1b[2J"}]}, dry_run=False)
@example(
    data={**BASE, "mailboxes": [{**BASE["mailboxes"][0], "process_email_after": "2025-13-45T25:61:00"}]},
    dry_run=False,
)
@example(data={**BASE, "mailboxes": [{**BASE["mailboxes"][0], "server_profile": "No\nsuch"}]}, dry_run=False)
@example(data={**BASE, "queues": [{**BASE["queues"][0], "type": "pub\nlic"}]}, dry_run=True)
def test_a_broken_file_is_refused_in_one_line_and_writes_nothing(apply_file, data, dry_run):
    message, before, after = apply_file(data, *(["--dry-run"] if dry_run else []))

    if message is not None:
        assert_one_line_naming_the_record_and_field(message)
    if message is not None or dry_run:
        assert after == before, "a refused file (or a dry run) wrote to the database"


# The real command, in a process of its own ------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"config\.json: nested too deeply"),
        (b"\xff\xfe{\x00}", r"config\.json: "),
        (b'{"users": [{"username": "alice", "email": "a\\u0000@x.test"}]}', r"users\[0\] \(alice\): email: "),
        (b"{" + b'"a": 1, ' * 50_000 + b'"a": 2}', r"config\.json: the key 'a' appears twice"),
    ],
    ids=["nested-100k-deep", "not-utf-8", "nul-in-a-value", "a-key-twice"],
)
def test_the_command_refuses_a_hostile_file_with_one_line_and_exit_status_1(
    sqlite_file, tmp_path, content, expected
):
    path = tmp_path / "config.json"
    path.write_bytes(content)

    done = run_manage("apply_config", str(path), env=sqlite_env(sqlite_file))

    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert re.search(expected, lines[0]), lines[0]

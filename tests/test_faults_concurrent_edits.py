"""Twenty people save the same mailbox at once, through real HTTP: no lost update, no 500.

Each client signs in, opens the mailbox form (reading its version), and all of them post
at the same moment. Every save either applies (a redirect) or is refused as stale (409
with the stale message, nothing written). See tests/fixtures/faults.py for how the site
is served on SQLite and on PostgreSQL.
"""

import html
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from mailboxes.models import Mailbox
from tests.fixtures.faults import HttpSession, read_form, signed_in

# serialized_rollback: like the other transactional tests, so the flush after this test
# does not clash with the content types restored by the next one.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CLIENTS = 20
# Retrying clients make 1 + 2 + ... + n requests between them; ten keep the test short.
RETRYING = 10
STALE_MESSAGE = "was changed by someone else since you opened it. Nothing was saved"


def edit_url(mailbox) -> str:
    return f"/mailboxes/{mailbox.pk}/"


def appended(data: dict, tag: str) -> dict:
    """The form data with `tag` added to the name: a read-modify-write of the value shown,
    so a save that overwrote another one unseen would lose that one's tag."""
    return {**data, "name": f"{data['name']}|{tag}"}


def open_form(session, url: str) -> dict:
    reply = session.get(url)
    assert reply.status == 200, (reply.status, reply.body[:500])
    return read_form(reply.body, containing="version")


def history_of(mailbox) -> list[LogEntry]:
    return list(LogEntry.objects.filter(object_id=str(mailbox.pk), action_flag=CHANGE))


@pytest.fixture
def contested(make_forward_mailbox, sysadmin, manager):
    """A forward mailbox and twenty signed-in sessions (two people, ten tabs each)."""
    mailbox = make_forward_mailbox(name="Shared")
    cookies = [signed_in(sysadmin if n % 2 else manager) for n in range(CLIENTS)]

    def sessions(base_url):
        return [HttpSession(base_url, cookies=dict(jar)) for jar in cookies]

    return mailbox, sessions


def test_twenty_simultaneous_saves_of_one_version_apply_exactly_once(served_site, contested):
    mailbox, sessions = contested
    url = edit_url(mailbox)

    def race(base_url):
        clients = sessions(base_url)
        forms = [open_form(client, url) for client in clients]  # everyone reads version 1
        start = threading.Barrier(CLIENTS)

        def save(n):
            start.wait()
            return clients[n].post(url, appended(forms[n], f"c{n}"))

        with ThreadPoolExecutor(CLIENTS) as pool:
            return forms, list(pool.map(save, range(CLIENTS)))

    forms, replies = served_site(race)

    assert {form["version"] for form in forms} == {"1"}
    statuses = [reply.status for reply in replies]
    assert set(statuses) <= {302, 409}, statuses
    assert statuses.count(302) == 1, statuses
    for reply in replies:
        if reply.status == 409:
            assert STALE_MESSAGE in html.unescape(reply.body)
    winner = statuses.index(302)
    saved = Mailbox.objects.get(pk=mailbox.pk)
    assert (saved.name, saved.version) == (f"Shared|c{winner}", 2)
    assert len(history_of(mailbox)) == 1


def test_clients_that_retry_after_a_refusal_all_land_and_none_is_lost(served_site, contested):
    mailbox, sessions = contested
    url = edit_url(mailbox)

    def race(base_url):
        clients = sessions(base_url)
        forms = [open_form(client, url) for client in clients[:RETRYING]]
        start = threading.Barrier(RETRYING)

        def save_until_applied(n):
            start.wait()
            data, statuses = forms[n], []
            while len(statuses) <= RETRYING:
                reply = clients[n].post(url, appended(data, f"c{n}"))
                statuses.append(reply.status)
                if reply.status != 409:
                    break
                # The refusal shows the current values and version: redo the edit on them.
                data = read_form(reply.body, containing="version")
            return statuses

        with ThreadPoolExecutor(RETRYING) as pool:
            return list(pool.map(save_until_applied, range(RETRYING)))

    attempts = served_site(race)

    assert all(statuses[-1] == 302 for statuses in attempts), attempts
    assert all(set(statuses[:-1]) <= {409} for statuses in attempts), attempts
    saved = Mailbox.objects.get(pk=mailbox.pk)
    tags = saved.name.split("|")
    assert tags[0] == "Shared"
    assert sorted(tags[1:]) == sorted(f"c{n}" for n in range(RETRYING))  # every edit, once
    assert saved.version == 1 + RETRYING
    assert len(history_of(mailbox)) == RETRYING

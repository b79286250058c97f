"""The connection cap's slots in one process (tests/test_connection_cap_processes.py runs
it across processes): claims up to the cap, leases that expire, bounded waiting."""

import time
from datetime import timedelta

import pytest

from mailboxes.services import testing
from serverprofiles import connection_cap, connection_tests
from serverprofiles.connection_cap import (
    NoConnectionSlot,
    connection_slot,
    connection_slot_claim,
    connection_slot_lease,
    connection_slot_release,
    connection_slot_renew,
    connection_slots_claim,
    connection_slots_release,
    connection_slots_renew,
)
from serverprofiles.connectors import Cause
from serverprofiles.models import ConnectionSlot, EmailServerProfile
from tests.fixtures.mailservers import ConnectionCounter, CountingProxy

pytestmark = pytest.mark.django_db


def test_slots_are_claimed_up_to_the_cap_and_given_back(make_profile):
    profile = make_profile(max_connections=2)

    first, second = connection_slot_claim(profile), connection_slot_claim(profile)
    third = connection_slot_claim(profile)

    assert {first.number, second.number} == {1, 2}
    assert third is None
    connection_slot_release(first)
    again = connection_slot_claim(profile)
    assert again.number == first.number and again.holder != first.holder
    assert ConnectionSlot.objects.filter(profile=profile).count() == 2


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_free_it(make_profile):
    profile = make_profile(max_connections=1)
    stale = connection_slot_claim(profile, lease=timedelta(seconds=-1))  # as if its holder died

    taken = connection_slot_claim(profile)
    connection_slot_release(stale)  # the old holder comes back late

    assert taken is not None and taken.number == stale.number
    assert connection_slot_claim(profile) is None  # still held by the new holder
    assert connection_slot_renew(stale, timedelta(seconds=60)) is None
    assert connection_slot_renew(taken, timedelta(seconds=60)) is not None


def test_several_slots_are_claimed_renewed_and_given_back_in_one_statement_each(
    make_profile, django_assert_num_queries
):
    profile = make_profile(max_connections=3)
    connection_slots_release(connection_slots_claim(profile, 3))  # the slots are made once

    with django_assert_num_queries(2):  # UPDATE of the free ones, SELECT of those got
        held = connection_slots_claim(profile, 5)
    assert sorted(slot.number for slot in held) == [1, 2, 3]
    assert connection_slots_claim(profile, 1) == []
    with django_assert_num_queries(1):
        assert connection_slots_renew(held, timedelta(seconds=60)) == []
    with django_assert_num_queries(1):
        connection_slots_release(held)
    assert not ConnectionSlot.objects.filter(profile=profile).exclude(holder="").exists()


def test_a_renewal_names_the_slots_lost_and_a_release_frees_only_its_own(make_profile):
    profile = make_profile(max_connections=2)
    mine = connection_slots_claim(profile, 2, lease=timedelta(seconds=-1))  # expired: as if stalled
    taken = connection_slot_claim(profile)  # another process takes one of them over

    lost = connection_slots_renew(mine, timedelta(seconds=60))
    connection_slots_release(mine)

    assert [slot.number for slot in lost] == [taken.number]
    holders = dict(ConnectionSlot.objects.filter(profile=profile).values_list("number", "holder"))
    assert holders[taken.number] == taken.holder  # still the other process's
    assert holders[3 - taken.number] == ""


def test_a_lease_holds_until_it_expires_by_the_database_clock(make_profile):
    profile = make_profile(max_connections=1)
    connection_slot_claim(profile, lease=timedelta(seconds=1.5))

    assert connection_slot_claim(profile) is None
    time.sleep(0.5)
    assert connection_slot_claim(profile) is None
    time.sleep(1.2)
    assert connection_slot_claim(profile) is not None


def test_claiming_a_free_slot_is_two_queries_and_giving_it_back_one(make_profile, django_assert_num_queries):
    profile = make_profile(max_connections=2)
    connection_slot_release(connection_slot_claim(profile))  # the slots are made once

    # 1. SELECT the free or expired slots of the profile up to its cap, lowest first
    # 2. UPDATE the first of them, if it is still free: claimed
    with django_assert_num_queries(2):
        held = connection_slot_claim(profile)
    # 1. UPDATE it back to free, if it is still ours
    with django_assert_num_queries(1):
        connection_slot_release(held)


def test_a_lowered_cap_leaves_the_slots_above_it_unused(make_profile):
    profile = make_profile(max_connections=3)
    held = [connection_slot_claim(profile) for _ in range(3)]
    for slot in held:
        connection_slot_release(slot)
    EmailServerProfile.objects.filter(pk=profile.pk).update(max_connections=1)

    assert connection_slot_claim(profile).number == 1
    assert connection_slot_claim(profile) is None


def test_the_lease_covers_every_step_of_the_dialogues_and_a_margin(make_profile):
    profile = make_profile(timeout_ms=2000)

    assert connection_slot_lease(profile) == timedelta(seconds=2 * 3 + connection_cap.LEASE_MARGIN_SECONDS)
    assert connection_slot_lease(profile, connections=2) == timedelta(
        seconds=12 + connection_cap.LEASE_MARGIN_SECONDS
    )


def test_waiting_for_a_slot_is_bounded_and_says_why(make_profile):
    profile = make_profile(name="Busy IMAP", max_connections=1)
    connection_slot_claim(profile)
    started = time.monotonic()

    with pytest.raises(NoConnectionSlot) as raised, connection_slot(profile, wait=0.3):
        pytest.fail("the block must not run without a slot")

    assert 0.3 <= time.monotonic() - started < 2
    message = str(raised.value)
    assert 'the profile "Busy IMAP"' in message and "all 1 that its Maximum Concurrent Connections" in message


def test_a_slot_is_given_back_when_the_block_fails(make_profile):
    profile = make_profile(max_connections=1)

    with pytest.raises(RuntimeError), connection_slot(profile):
        raise RuntimeError("the connection broke")

    assert connection_slot_claim(profile) is not None


def test_an_unsaved_profile_has_no_slot_to_count_against():
    with connection_slot(EmailServerProfile(name="Not saved", max_connections=1)) as held:
        assert held is None


@pytest.fixture
def counted(dovecot, smtp_servers):
    counter = ConnectionCounter()
    imap = CountingProxy((dovecot.plain_host, dovecot.imap_port), counter)
    smtp = CountingProxy((smtp_servers.host, smtp_servers.plain_port), counter)
    yield counter, imap.port, smtp.port
    imap.close()
    smtp.close()


def test_test_and_enable_fails_with_the_cause_when_other_processes_keep_every_slot(
    make_test_server_profile, make_test_mailbox, no_approval_required, counted, monkeypatch
):
    counter, imap_port, smtp_port = counted
    profile = make_test_server_profile(
        incoming_server="127.0.0.1", incoming_port=imap_port, outgoing_port=smtp_port, max_connections=1
    )
    mailboxes = [make_test_mailbox(profile) for _ in range(3)]
    connection_slot_claim(profile)  # another process, connecting for a long time
    monkeypatch.setattr(testing, "connection_slot_wait_limit", lambda profile: 0.3)

    results = testing.run_mailbox_tests([m.pk for m in mailboxes])

    assert len(results) == 3 and all(r.failed for r in results)
    for result in results:
        assert result.outcomes["incoming"].cause == Cause.TIMED_OUT
        assert "Maximum Concurrent Connections" in result.outcomes["incoming"].message
    assert counter.total == 0  # nothing was contacted


def test_test_connection_waits_for_a_slot_and_contacts_nothing_without_one(
    make_test_server_profile, counted, monkeypatch
):
    counter, imap_port, smtp_port = counted
    profile = make_test_server_profile(
        incoming_server="127.0.0.1", incoming_port=imap_port, outgoing_port=smtp_port, max_connections=1
    )
    held = connection_slot_claim(profile)
    monkeypatch.setattr(connection_cap, "connection_slot_wait_limit", lambda profile: 0.2)

    refused = connection_tests.profile_test_connection(profile)
    connection_slot_release(held)
    tested = connection_tests.profile_test_connection(profile)

    assert refused.incoming.cause == refused.outgoing.cause == Cause.TIMED_OUT
    assert tested.ok, (tested.incoming.message, tested.outgoing.message)
    assert (counter.total, counter.maximum) == (2, 1)
    assert connection_slot_claim(profile) is not None  # given back after each connection

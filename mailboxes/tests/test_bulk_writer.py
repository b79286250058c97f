"""users_insert and mailboxes_save (the bulk writer): many records at once, with the
outcome, errors and history of user_insert and mailbox_save one record at a time."""

import copy

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import Mailbox, MailboxSearchText, User
from mailboxes.services.bulk import RecordFailed, mailboxes_save, users_insert
from mailboxes.services.mailboxes import mailbox_save, mailbox_set_state
from mailboxes.services.users import user_build, user_insert


def new_users(*names, **fields):
    return [user_build(username=name, email=f"{name}@example.test", **fields) for name in names]


def edited(mailbox: Mailbox, **changes) -> tuple[Mailbox, Mailbox]:
    after = copy.copy(mailbox)
    for name, value in changes.items():
        setattr(after, name, value)
    return mailbox, after


def test_new_users_get_their_mailbox_and_an_addition_entry(org, profile, sysadmin):
    org.default_server_profile = profile
    org.save()

    users_insert(new_users("ann", "ben"), actor=sysadmin, via="test")

    for name in ("ann", "ben"):
        user = User.objects.get(username=name)
        assert not user.has_usable_password()
        mailbox = user.mailbox
        assert (mailbox.kind, mailbox.owner, mailbox.server_profile) == ("user", user, profile)
        assert mailbox.approval_status == "pending"  # M13a: the organisation requires approval
        entry = LogEntry.objects.get(object_id=str(user.pk), content_type__model="user")
        assert (entry.user, entry.change_message) == (sysadmin, "Added (via test).")
    # Unusable passwords differ from user to user, as Django's set_unusable_password() makes them.
    assert len(set(User.objects.filter(username__in=["ann", "ben"]).values_list("password", flat=True))) == 2


def test_a_taken_username_is_refused_as_user_insert_refuses_it(make_user):
    make_user("ann")
    with pytest.raises(ValidationError) as single:
        user_insert(new_users("ann")[0])

    with pytest.raises(RecordFailed) as bulk:
        users_insert(new_users("cid", "ann"))

    assert bulk.value.index == 1
    assert bulk.value.error.message_dict == single.value.message_dict
    assert not User.objects.filter(username="cid").exists()


def test_a_password_set_by_a_manager_is_refused_as_user_insert_refuses_it(manager):
    with pytest.raises(ValidationError) as single:
        user_insert(new_users("ann", password="Known-Horse-Staple-5")[0], actor=manager)

    with pytest.raises(RecordFailed) as bulk:
        users_insert(new_users("cid") + new_users("ann", password="Known-Horse-Staple-5"), actor=manager)

    assert bulk.value.index == 1
    assert bulk.value.error.message_dict == single.value.message_dict
    assert not User.objects.filter(username__in=["ann", "cid"]).exists()


def test_a_user_whose_mailbox_breaks_a_rule_undoes_the_whole_call(make_forward_mailbox):
    make_forward_mailbox(email="taken@example.test")
    users = new_users("ann") + [user_build(username="ben", email="Taken@example.test")]

    with pytest.raises(RecordFailed) as raised:
        users_insert(users)

    assert raised.value.index == 1
    assert raised.value.error.message_dict == {"email": ["Another mailbox already uses this email address."]}
    assert not User.objects.filter(username__in=["ann", "ben"]).exists()
    assert not Mailbox.objects.filter(email="ann@example.test").exists()


def test_changes_get_the_consequences_and_history_of_mailbox_save(make_user, sysadmin, profile):
    one, two = make_user(), make_user()
    for user in (one, two):
        Mailbox.objects.filter(pk=user.mailbox.pk).update(
            incoming_status="success", enabled_incoming=True, approval_status="approved"
        )
    single = Mailbox.objects.get(pk=one.mailbox.pk)
    single.email, single.server_profile = "one-new@example.test", profile
    mailbox_save(single, actor=sysadmin, via="test")
    before = Mailbox.objects.get(pk=two.mailbox.pk)

    mailboxes_save(
        [edited(before, email="two-new@example.test", server_profile=profile)], actor=sysadmin, via="test"
    )

    bulk = Mailbox.objects.get(pk=two.mailbox.pk)
    single = Mailbox.objects.get(pk=one.mailbox.pk)
    compared = ("version", "approval_status", "incoming_status", "enabled_incoming", "server_profile_id")
    assert [getattr(bulk, f) for f in compared] == [getattr(single, f) for f in compared]
    assert (bulk.approval_status, bulk.incoming_status) == ("pending", "not-run")  # M13
    assert bulk.modified_on > before.modified_on
    assert User.objects.get(pk=two.pk).email == "two-new@example.test"  # M12
    entries = LogEntry.objects.filter(content_type__model="mailbox", user=sysadmin)
    assert (
        entries.get(object_id=str(bulk.pk)).change_message
        == entries.get(object_id=str(single.pk)).change_message
    )


def test_a_stale_row_is_refused_and_nothing_is_written(make_user):
    one, two = make_user(), make_user()
    first = Mailbox.objects.get(pk=one.mailbox.pk)
    stale = Mailbox.objects.get(pk=two.mailbox.pk)
    mailbox_set_state(mailbox=Mailbox.objects.get(pk=two.mailbox.pk), active=False)  # someone else

    with pytest.raises(RecordFailed) as raised:
        mailboxes_save([edited(first, name="First"), edited(stale, name="Stale")])

    assert raised.value.index == 1
    assert isinstance(raised.value.error, StaleEditError)
    assert Mailbox.objects.get(pk=first.pk).version == first.version


def test_an_address_counts_for_the_records_after_it_as_one_by_one(make_user):
    one, two, three = (Mailbox.objects.get(pk=make_user().mailbox.pk) for _ in range(3))

    # one leaves its address and two takes it: fine one by one, so fine together.
    mailboxes_save([edited(one, email="moved@example.test"), edited(two, email=one.email)])
    assert Mailbox.objects.get(pk=two.pk).email == one.email

    # three cannot take the address two took earlier in the same call.
    three = Mailbox.objects.get(pk=three.pk)
    one = Mailbox.objects.get(pk=one.pk)
    with pytest.raises(RecordFailed) as raised:
        mailboxes_save([edited(one, email="again@example.test"), edited(three, email="again@example.test")])
    assert raised.value.index == 1
    assert raised.value.error.message_dict == {"email": ["Another mailbox already uses this email address."]}


def test_a_forward_mailbox_leaving_counts_for_the_records_after_it(make_forward_mailbox, make_user):
    forward = make_forward_mailbox()
    user_mailbox = Mailbox.objects.get(pk=make_user().mailbox.pk)

    with pytest.raises(RecordFailed) as raised:
        mailboxes_save(
            [
                edited(forward, state=Mailbox.State.INACTIVE),
                edited(user_mailbox, incoming_method="forward-mailbox"),
            ]
        )

    assert raised.value.index == 1
    assert list(raised.value.error.message_dict) == ["incoming_method"]


def test_a_call_costs_the_same_queries_for_few_or_many_mailboxes(make_user, sysadmin):
    counts = []
    for size in (3, 12):
        users = [make_user() for _ in range(size)]
        rows = list(Mailbox.objects.select_related("user").filter(user__in=users))
        with CaptureQueriesContext(connection) as queries:
            mailboxes_save([edited(row, name=f"Renamed {row.pk}") for row in rows], actor=sysadmin)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_records_with_values_of_their_own_are_written_in_one_statement(make_user, sysadmin):
    # Each record its own name: one upsert (INSERT … ON CONFLICT (id) DO UPDATE) writes
    # them; the row keeps its creation time, and on PostgreSQL the search table follows.
    rows = [Mailbox.objects.get(pk=make_user().mailbox.pk) for _ in range(3)]
    changes = [edited(row, name=f"Renamed {n}") for n, row in enumerate(rows)]

    with CaptureQueriesContext(connection) as queries:
        mailboxes_save(changes, actor=sysadmin)

    writes = [q["sql"] for q in queries if q["sql"].startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 2  # the mailboxes, then their history entries
    assert "ON CONFLICT" in writes[0]
    for n, row in enumerate(rows):
        saved = Mailbox.objects.get(pk=row.pk)
        assert (saved.name, saved.version, saved.created_on) == (
            f"Renamed {n}",
            row.version + 1,
            row.created_on,
        )
        assert saved.modified_on > row.modified_on
    if connection.vendor == "postgresql":
        names = MailboxSearchText.objects.filter(mailbox__in=rows).values_list("name", flat=True)
        assert sorted(names) == [f"Renamed {n}" for n in range(3)]

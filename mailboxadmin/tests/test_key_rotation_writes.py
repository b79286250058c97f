"""How rotate_encryption_keys writes: batches of --batch-size rows, each committed on its
own, only values under an older key, so that a run can stop anywhere and be started again."""

import io
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import DatabaseError, connection

from mailboxadmin import encryption
from mailboxes.models import Mailbox


@contextmanager
def mailbox_password_updates():
    """The SQL of each UPDATE of the stored mailbox passwords, in the order sent."""
    updates = []

    def record(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and "mailboxes_mailbox" in sql and "password_ciphertext" in sql:
            updates.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield updates


@pytest.fixture
def mailboxes_with_passwords(make_user, profile):
    """Twenty user mailboxes with credentials, their ids in order."""
    users = [make_user() for _ in range(20)]
    ids = sorted(user.mailbox.pk for user in users)
    Mailbox.objects.filter(pk__in=ids).update(
        server_profile=profile,
        allow_credentials=True,
        username="svc",
        password_ciphertext=encryption.encrypt("Plain-Text-Secret-42"),
    )
    return ids


def tokens() -> dict[int, str]:
    return dict(Mailbox.objects.values_list("pk", "password_ciphertext"))


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_each_batch_is_written_in_one_statement(mailboxes_with_passwords, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]

    with mailbox_password_updates() as updates:
        out = rotate("--batch-size", "6")  # 20 rows: batches of 6, 6, 6 and 2

    assert "re-encrypted 20 with the first key" in out
    assert len(updates) == 4


@pytest.mark.django_db
def test_rotation_rewrites_only_values_under_an_older_key(mailboxes_with_passwords, settings):
    ids = mailboxes_with_passwords
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    already = ids[::3]  # interleaved with the rest
    Mailbox.objects.filter(pk__in=already).update(password_ciphertext=encryption.encrypt("Other-Secret-7"))
    before = tokens()

    out = rotate("--batch-size", "3")

    assert "20 stored passwords examined; re-encrypted 13 with the first key" in out
    after = tokens()
    assert sorted(pk for pk in ids if after[pk] != before[pk]) == [pk for pk in ids if pk not in already]
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    passwords = {m.pk: m.get_password() for m in Mailbox.objects.filter(pk__in=ids)}
    assert passwords == {pk: "Other-Secret-7" if pk in already else "Plain-Text-Secret-42" for pk in ids}


@pytest.mark.django_db
def test_a_key_listed_twice_is_still_the_first_key(mailboxes_with_passwords, settings):
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS, new_key]
    rotate()

    with mailbox_password_updates() as updates:
        out = rotate()

    assert "re-encrypted 0 with the first key" in out
    assert updates == []


@contextmanager
def update_refused_for(pk: int):
    """A trigger that makes the database refuse any UPDATE of mailbox `pk`."""
    if connection.vendor == "postgresql":
        create = [
            "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON mailboxes_mailbox FOR EACH ROW "
            f"WHEN (OLD.id = {int(pk)}) EXECUTE FUNCTION refuse_update()",
        ]
        drop = ["DROP TRIGGER refuse_update ON mailboxes_mailbox", "DROP FUNCTION refuse_update()"]
    else:
        create = [
            f"CREATE TRIGGER refuse_update BEFORE UPDATE ON mailboxes_mailbox WHEN OLD.id = {int(pk)} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER refuse_update"]
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)


# Outside a test transaction, as the command runs, so that each batch really commits.
# serialized_rollback restores the data migration's groups after the flush, like the
# other transactional tests.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_refused_write_keeps_the_batches_before_it_and_a_second_run_finishes(
    mailboxes_with_passwords, settings
):
    ids = mailboxes_with_passwords
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    before = tokens()

    # --batch-size 4: the batches are ids[0:4], ids[4:8], …; the second one is refused.
    with update_refused_for(ids[6]), pytest.raises(DatabaseError, match="refused by the test"):
        rotate("--batch-size", "4")

    after = tokens()
    assert {pk for pk in ids if after[pk] != before[pk]} == set(ids[:4])

    out = rotate("--batch-size", "4")

    assert "re-encrypted 16 with the first key" in out
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert {m.get_password() for m in Mailbox.objects.filter(pk__in=ids)} == {"Plain-Text-Secret-42"}


@pytest.mark.django_db
def test_a_password_set_while_its_batch_is_rotated_is_kept(mailboxes_with_passwords, settings):
    """Between a batch's read and its write, an administrator sets one mailbox's password
    (under the new first key): the rotation must not put the old password back."""
    ids = mailboxes_with_passwords
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    changed_meanwhile = ids[4]
    set_meanwhile = encryption.encrypt("Set-Meanwhile-8")
    done = []

    def set_password_first(execute, sql, params, many, context):
        if not done and sql.startswith("UPDATE") and "password_ciphertext" in sql:
            done.append(True)
            Mailbox.objects.filter(pk=changed_meanwhile).update(password_ciphertext=set_meanwhile)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(set_password_first):
        out = rotate("--batch-size", "10")

    assert "20 stored passwords examined; re-encrypted 19 with the first key" in out
    assert tokens()[changed_meanwhile] == set_meanwhile
    passwords = {m.pk: m.get_password() for m in Mailbox.objects.filter(pk__in=ids)}
    expected = {pk: "Plain-Text-Secret-42" for pk in ids} | {changed_meanwhile: "Set-Meanwhile-8"}
    assert passwords == expected

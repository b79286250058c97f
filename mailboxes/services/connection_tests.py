"""Test Connection in the background: a profile form's values are tested by a worker, and
the page shows the result when it is in (no web request waits on a mail server).

- `profile_connection_test_start(profile, actor=)`: check the form's values, keep them in
  a ProfileConnectionTest (a typed password only encrypted) and enqueue the task.
- `profile_connection_test_run(test_id)`: what the task runs; erases the encrypted
  password whatever happens.
- `profile_connection_test_for(test_id, user)`: the test, for the user who asked only.

The task's arguments (stored by django-tasks-db in its table) are the row's id alone.
Rows are deleted KEPT_FOR after they were asked for, whenever a new test starts.
"""

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from mailboxes.services.testing import (
    _validate_connection_fields,
    can_test_mailboxes,
    check_can_test_mailboxes,
    profile_test_connection,
)
from serverprofiles.connectors import Cause, Outcome
from serverprofiles.models import ConnectionTestStatus, EmailServerProfile, ProfileConnectionTest

logger = logging.getLogger(__name__)

KEPT_FOR = timedelta(hours=1)
# Typed secrets, kept only encrypted and only until the test has run: passwords, and the
# OAuth client secret or service account key (SPEC 7).
PASSWORD_FIELDS = (
    "incoming_password_ciphertext",
    "outgoing_password_ciphertext",
    "oauth_client_secret_ciphertext",
    "oauth_service_account_key_ciphertext",
)
# Fields that are not a connection value, or not plain JSON.
NOT_KEPT = {"id", "owner", "process_email_from", "created_on", "modified_on", *PASSWORD_FIELDS}


def _values(profile: EmailServerProfile) -> dict:
    """The profile's field values as the form holds them (every plain field, so that a
    field added later is tested as typed too)."""
    values = {}
    for field in profile._meta.concrete_fields:
        value = field.value_from_object(profile)
        if field.name not in NOT_KEPT and (value is None or isinstance(value, str | int | bool)):
            values[field.attname] = value
    return values


def _typed_passwords(profile: EmailServerProfile) -> dict[str, str]:
    """The encrypted passwords on the form that are not the saved ones (typed on it)."""
    saved = dict.fromkeys(PASSWORD_FIELDS, "")
    if profile.pk:
        saved = EmailServerProfile.objects.filter(pk=profile.pk).values(*PASSWORD_FIELDS).first() or saved
    return {name: getattr(profile, name) for name in PASSWORD_FIELDS if getattr(profile, name) != saved[name]}


def profile_connection_test_start(profile: EmailServerProfile, *, actor) -> ProfileConnectionTest:
    """Test Connection: test the (unsaved) values of `profile` in the background.

    Raises PermissionDenied without "Test & Enable Mailboxes", ValidationError (on the
    form's field names) for values that cannot be tried. Nothing of the profile is saved.
    """
    from mailboxes.tasks import run_profile_connection_test_task

    check_can_test_mailboxes(actor)
    _validate_connection_fields(profile)
    ProfileConnectionTest.objects.filter(created_on__lt=timezone.now() - KEPT_FOR).delete()
    with transaction.atomic():
        test = ProfileConnectionTest.objects.create(
            profile_id=profile.pk,
            requested_by=actor,
            values=_values(profile),
            **_typed_passwords(profile),
        )
        # With the database backend the task is written in this transaction: a worker
        # never sees the task without its row.
        run_profile_connection_test_task.enqueue(test.pk)
    test.refresh_from_db()
    return test


def _profile(test: ProfileConnectionTest) -> EmailServerProfile:
    """The profile as the form held it; passwords not typed on it are the saved ones."""
    profile = EmailServerProfile(pk=test.profile_id, **test.values)
    saved = EmailServerProfile.objects.filter(pk=test.profile_id).values(*PASSWORD_FIELDS).first() or {}
    for name in PASSWORD_FIELDS:
        setattr(profile, name, getattr(test, name) or saved.get(name, ""))
    return profile


def _as_json(outcome: Outcome) -> dict:
    return {
        "ok": outcome.ok,
        "cause": outcome.cause.value if outcome.cause else None,
        "message": outcome.message,
    }


def _outcomes(test: ProfileConnectionTest) -> dict[str, Outcome]:
    try:
        result = profile_test_connection(_profile(test), actor=test.requested_by)
        return {"incoming": result.incoming, "outgoing": result.outgoing}
    except (ValidationError, PermissionDenied) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        failure = Outcome.failure(Cause.SERVER_ERROR, f"the values cannot be tested: {message}")
    except Exception as exc:  # a last resort: the page must not say "Testing…" for ever
        logger.error("Test Connection %s stopped: %s", test.pk, type(exc).__name__)
        failure = Outcome.failure(
            Cause.SERVER_ERROR, f"the test stopped unexpectedly ({type(exc).__name__})."
        )
    return {"incoming": failure, "outgoing": failure}


def profile_connection_test_run(test_id: int) -> dict | None:
    """Run a waiting Test Connection and record its result; None if it is not waiting
    (run already, or deleted). The encrypted password is erased however it ends."""
    waiting = ProfileConnectionTest.objects.filter(pk=test_id, status=ConnectionTestStatus.PENDING)
    if not waiting.update(status=ConnectionTestStatus.RUNNING):
        return None
    recorded = None
    try:
        test = ProfileConnectionTest.objects.select_related("requested_by").get(pk=test_id)
        recorded = {direction: _as_json(outcome) for direction, outcome in _outcomes(test).items()}
    finally:
        ProfileConnectionTest.objects.filter(pk=test_id).update(
            status=ConnectionTestStatus.FINISHED,
            finished_on=timezone.now(),
            result=recorded,
            **dict.fromkeys(PASSWORD_FIELDS, ""),
        )
    return recorded


def profile_connection_test_for(test_id: int, user) -> ProfileConnectionTest | None:
    """The Test Connection `test_id` if `user` asked for it and may still test, else None
    (another user's test is not revealed to exist)."""
    if not can_test_mailboxes(user):
        return None
    return (
        ProfileConnectionTest.objects.filter(pk=test_id, requested_by=user).select_related("profile").first()
    )

"""Test Connection: a server profile's values as the form holds them, tried against its
servers before they are saved (the profile's own credentials or OAuth client, no mailbox).

- `profile_test_connection(profile, incoming_password=, outgoing_password=)`: try them now.
- `profile_connection_test_start(profile, actor=)`: check the form's values, keep them in
  a ProfileConnectionTest (a typed password only encrypted) and enqueue the task, so that
  no web request waits on a mail server.
- `profile_connection_test_run(test_id)`: what the task runs; erases the encrypted
  password whatever happens.
- `profile_connection_test_for(test_id, user)`: the test, for the user who asked only.

The task's arguments (stored by django-tasks-db in its table) are the row's id alone.
Rows are deleted KEPT_FOR after they were asked for, whenever a new test starts.
Each check holds one of the saved profile's connection slots (connection_cap.py).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from mailboxadmin import encryption
from mailboxadmin.encryption import CredentialDecryptionError
from mailboxadmin.validators import is_host_name
from mailboxes.services.endpoints import profile_server_endpoint
from mailboxes.services.testing import can_test_mailboxes, check_can_test_mailboxes
from serverprofiles.connection_cap import NoConnectionSlot, connection_slot, connection_slot_lease
from serverprofiles.connectors import Cause, Endpoint, Outcome, check_incoming, check_outgoing
from serverprofiles.models import (
    AuthenticationMethod,
    ConnectionTestStatus,
    EmailServerProfile,
    ProfileConnectionTest,
)
from serverprofiles.oauth import profile_access_token

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


# Testing the values now --------------------------------------------------------------


@dataclass(frozen=True)
class ProfileConnectionResult:
    incoming: Outcome
    outgoing: Outcome

    @property
    def ok(self) -> bool:
        return self.incoming.ok and self.outgoing.ok


def profile_test_connection(
    profile: EmailServerProfile,
    *,
    incoming_password: str | None = None,
    outgoing_password: str | None = None,
    actor=None,
) -> ProfileConnectionResult:
    """Test Connection: try a profile's values as the form holds them, before saving.

    A blank password means the stored one. The profile's own credentials are used
    where it has them (Credentials Specified in Email Server Profile); otherwise the
    test connects and secures the connection without logging in. Nothing is saved.
    Raises ValidationError (on the form's field names) for values that cannot be tried.
    """
    if actor is not None:
        check_can_test_mailboxes(actor)
    _validate_connection_fields(profile)
    incoming_credentials = _profile_credentials(profile, "incoming", incoming_password)
    if profile.use_same_settings_for_outgoing:
        outgoing_credentials = incoming_credentials
    else:
        outgoing_credentials = _profile_credentials(profile, "outgoing", outgoing_password)
    outcomes = []
    for direction, credentials, check in (
        ("incoming", incoming_credentials, check_incoming),
        ("outgoing", outgoing_credentials, check_outgoing),
    ):
        if profile.oauth_for(direction):
            outcomes.append(_oauth_connection_test(profile, direction, check))
            continue
        if isinstance(credentials, Outcome):
            outcomes.append(credentials)
            continue
        endpoint = profile_server_endpoint(profile, direction, *credentials)
        outcomes.append(
            _check_within_cap(profile, check, endpoint) if isinstance(endpoint, Endpoint) else endpoint
        )
    return ProfileConnectionResult(*outcomes)


def _oauth_connection_test(profile: EmailServerProfile, direction: str, check) -> Outcome:
    """Test Connection of an OAuth profile: ask the token endpoint for a token (its client
    ID, secret and permissions), then connect and secure the mail server. There is no
    mailbox to log in as; Test & Enable logs in as each one. Google's token acts for the
    profile's owner, when it has one."""
    owner = profile.owner if profile.owner_id else None
    token = profile_access_token(profile, subject=getattr(owner, "email", "") or "")
    if isinstance(token, Outcome):
        return token
    endpoint = profile_server_endpoint(profile, direction, "", None)
    if isinstance(endpoint, Outcome):
        return endpoint
    outcome = _check_within_cap(profile, check, endpoint)
    if not outcome.ok:
        return outcome
    return Outcome.success(f"{outcome.message} The token endpoint issued an access token.")


def _check_within_cap(profile: EmailServerProfile, check, endpoint: Endpoint) -> Outcome:
    """One Test Connection check, holding one of the saved profile's connection slots."""
    try:
        with connection_slot(profile, lease=connection_slot_lease(profile)):
            return check(endpoint)
    except NoConnectionSlot as exc:
        return Outcome.failure(Cause.TIMED_OUT, str(exc))


def _profile_credentials(profile: EmailServerProfile, direction: str, typed: str | None):
    """(user name, password typed or stored password with its binding), or an Outcome."""
    auth = profile.incoming_auth if direction == "incoming" else profile.outgoing_auth
    if auth != AuthenticationMethod.PROFILE_CREDENTIALS:
        return "", None
    username = profile.incoming_username if direction == "incoming" else profile.outgoing_username
    if typed:
        return username, typed
    ciphertext = getattr(profile, f"{direction}_password_ciphertext")
    if not ciphertext and profile.pk:
        ciphertext = (
            EmailServerProfile.objects.filter(pk=profile.pk)
            .values_list(f"{direction}_password_ciphertext", flat=True)
            .first()
            or ""
        )
    try:
        record = f'email server profile "{profile.name}" ({direction})'
        password = encryption.decrypt_bound(ciphertext, record=record)
    except CredentialDecryptionError as exc:
        return Outcome.failure(Cause.AUTHENTICATION_FAILED, str(exc))
    if not username or not password.secret:
        return Outcome.failure(
            Cause.AUTHENTICATION_FAILED,
            f"the profile has no {'user name' if not username else 'password'} for {direction} "
            'connections, and it authenticates with "Credentials Specified in Email Server Profile". '
            "Enter it and test again.",
        )
    return username, password


def _validate_connection_fields(profile: EmailServerProfile) -> None:
    """The values a connection needs, checked as the form would (P5, P6)."""
    connection_fields = {"incoming_server", "outgoing_server", "incoming_port", "outgoing_port", "timeout_ms"}
    errors: dict[str, list[str]] = {}
    try:
        profile.clean_fields(
            exclude=[f.name for f in profile._meta.fields if f.name not in connection_fields]
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if profile.locations_are_host_names:  # Exchange Online too (SPEC 7)
        for name in ("incoming_server", "outgoing_server"):
            if name not in errors and not is_host_name((getattr(profile, name) or "").strip()):
                label = profile._meta.get_field(name).verbose_name
                errors[name] = [
                    f"{label} must be a host name (imap.contoso.com), without scheme, port or path."
                ]
    if errors:
        raise ValidationError(errors)

"""Where a mailbox's connections go, and with which credentials: the Endpoint that Test &
Enable tests and mail processing reads, built one way for both.

- `mailbox_endpoint(mailbox, workload)`: the Endpoint of the mailbox's incoming or
  outgoing server, logged in with A5's credentials (the mailbox's own when Allow to Use
  Credentials is Yes, else the profile's) or an OAuth 2.0 access token (SPEC 7); or the
  Outcome that says why not (no credentials, a password entered for another server,
  a token endpoint's refusal). Nothing is contacted but, for OAuth, the token endpoint.
- `profile_server_endpoint(profile, direction, username, bound)`: the same for a profile
  and given credentials (a password just typed into a form, too).
"""

import dataclasses

from mailboxadmin import encryption
from mailboxadmin.encryption import CredentialDecryptionError
from mailboxes.models import Mailbox
from serverprofiles.bindings import binding_refusal
from serverprofiles.connectors import Cause, CredentialError, Endpoint, Outcome, check_act, profile_endpoint
from serverprofiles.models import AuthenticationMethod, EmailServerProfile
from serverprofiles.oauth import profile_access_token


def mailbox_endpoint(mailbox: Mailbox, workload: str = "incoming") -> Endpoint | Outcome:
    """The endpoint `mailbox`'s `workload` ("incoming", "outgoing" or "act") connects to,
    or why it cannot. The mailbox's server profile must be set."""
    profile = mailbox.server_profile
    if workload == "act":
        return check_act()
    if profile.oauth_for(workload):
        return oauth_endpoint(profile, workload, oauth_user(mailbox))
    try:
        username, bound = mailbox_credentials(mailbox, profile, workload)
    except CredentialDecryptionError as exc:
        return Outcome.failure(Cause.AUTHENTICATION_FAILED, str(exc))
    auth = profile.incoming_auth if workload == "incoming" else profile.effective_outgoing_auth
    if not username and auth != AuthenticationMethod.ANONYMOUS and not profile.is_exchange:
        return missing_credentials(profile)
    return profile_server_endpoint(profile, workload, username, bound)


def mailbox_credentials(
    mailbox: Mailbox, profile: EmailServerProfile, direction: str
) -> tuple[str, encryption.BoundSecret | None]:
    """A5: the mailbox's own credentials when it may use them, otherwise the profile's;
    the password with the servers it was entered for (SPEC 9)."""
    auth = profile.incoming_auth if direction == "incoming" else profile.effective_outgoing_auth
    if auth == AuthenticationMethod.ANONYMOUS:
        return "", None
    if mailbox.allow_credentials:
        return mailbox.username, mailbox.get_bound_password()
    if auth == AuthenticationMethod.PROFILE_CREDENTIALS:
        return profile.bound_credentials(direction)
    return "", None


def missing_credentials(profile: EmailServerProfile) -> Outcome:
    return Outcome.failure(
        Cause.AUTHENTICATION_FAILED,
        f'no credentials to log in with: the server profile "{profile.name}" uses "Credentials '
        'Specified by a User or Queue", and this mailbox\'s "Allow to Use Credentials for Email '
        'Processing" is No. Set it to Yes and enter the user name and password.',
    )


def oauth_user(mailbox: Mailbox) -> str:
    """SPEC 7: the SASL user is the mailbox's address (its User Name where Allow to Use
    Credentials is Yes)."""
    if mailbox.allow_credentials and mailbox.username:
        return mailbox.username
    return mailbox.email


def oauth_endpoint(profile: EmailServerProfile, direction: str, username: str) -> Endpoint | Outcome:
    """The endpoint to log in to as `username` with the profile's access token (got once
    per profile and run, see serverprofiles/oauth.py), or why not."""
    endpoint = profile_server_endpoint(profile, direction, username, None)
    if isinstance(endpoint, Outcome):
        return endpoint
    token = profile_access_token(profile, subject=username, server=endpoint)
    if isinstance(token, Outcome):
        return token
    try:
        return dataclasses.replace(endpoint, access_token=token)
    except CredentialError as exc:  # nothing a mail server could be sent
        return Outcome.failure(
            Cause.TOKEN_REFUSED, f"the token endpoint answered a token that cannot be used: {exc}"
        )


def profile_server_endpoint(
    profile: EmailServerProfile, direction: str, username: str, bound: encryption.BoundSecret | str | None
) -> Endpoint | Outcome:
    """The endpoint to contact, or why not. A stored password (`bound`) goes only to a
    server it was entered for (SPEC 9); one just typed (a str) goes to the form's server."""
    password = bound.secret if isinstance(bound, encryption.BoundSecret) else bound or ""
    try:
        endpoint = profile_endpoint(profile, direction, username=username, password=password)
    except CredentialError as exc:
        return Outcome.failure(Cause.AUTHENTICATION_FAILED, f"{exc} Enter them again.")
    except ValueError as exc:
        return Outcome.failure(
            Cause.SERVER_ERROR, f'the server profile "{profile.name}" cannot be used: {exc}'
        )
    if isinstance(bound, encryption.BoundSecret) and bound.secret:
        return binding_refusal(bound, endpoint) or endpoint
    return endpoint

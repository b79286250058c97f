"""Connection tests against real mail servers (A3, A4).

    from serverprofiles.connectors import Endpoint, check_incoming, check_outgoing

    outcome = check_incoming(Endpoint("imap", "imap.contoso.test", 993, ssl=True,
                                      username="alice", password=..., timeout=10))
    outcome.ok, outcome.cause, outcome.message

With `access_token=` instead of a password the check logs in with OAuth 2.0 (SASL
OAUTHBEARER or XOAUTH2); a refused token is Cause.AUTHENTICATION_FAILED, whose words a
caller that knows the provider completes with `outcome.extended(...)`.

The protocols are spoken by IMAPClient (IMAP), poplib (POP3) and smtplib (SMTP), each
on a socket the Dialogue opened (dialogue.py). A check contacts only the endpoint's host
and port, at an address the outbound policy allows (outbound.py), obeys its timeout,
verifies TLS certificates against the system trust store plus settings.MAIL_CA_BUNDLE,
never sends a message, and never raises: every failure comes back as an Outcome with a
Cause.

Mail processing opens the same connection and keeps it: `imap.imap_session(endpoint)` and
`pop3.pop3_session(endpoint)` connect, secure and log in exactly as the checks do, yield
the logged-in session, and raise `dialogue.SessionFailed` (its Outcome) when the server
or the network fails.
"""

from serverprofiles.connectors.endpoints import CredentialError, Endpoint, profile_endpoint
from serverprofiles.connectors.imap import check_imap
from serverprofiles.connectors.outcomes import APPROVAL_REQUIRED_MESSAGE, Cause, Outcome, not_supported
from serverprofiles.connectors.pop3 import check_pop3
from serverprofiles.connectors.smtp import check_smtp

__all__ = [
    "APPROVAL_REQUIRED_MESSAGE",
    "Cause",
    "CredentialError",
    "Endpoint",
    "Outcome",
    "check_act",
    "check_incoming",
    "check_outgoing",
    "profile_endpoint",
]


def check_incoming(endpoint: Endpoint) -> Outcome:
    """Connect, secure, log in and open the inbox (IMAP) or read its status (POP3)."""
    if endpoint.protocol == "imap":
        return check_imap(endpoint)
    if endpoint.protocol == "pop3":
        return check_pop3(endpoint)
    return not_supported("Incoming email through an Exchange server")


def check_outgoing(endpoint: Endpoint) -> Outcome:
    """Connect, secure, EHLO and AUTH (when credentials are given); never sends a message."""
    if endpoint.protocol == "smtp":
        return check_smtp(endpoint)
    return not_supported("Outgoing email through an Exchange server")


def check_act(endpoint: Endpoint | None = None) -> Outcome:
    """Appointments, contacts and tasks live only on Exchange, which has no connector yet."""
    return not_supported("Appointments, Contacts, and Tasks (an Exchange-only workload)")

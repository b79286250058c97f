"""One connection to a mail server, from connect to goodbye, and what its failures mean.

Every protocol check runs inside a Dialogue: it opens the socket to the configured host
and port only, at an address the outbound policy allows (outbound.py), secures it, keeps
track of the step it is at, and turns any failure into an Outcome with a cause (A4).
Nothing escapes it but KeyboardInterrupt.

The protocols themselves are spoken by well-kept libraries (IMAPClient over imaplib,
poplib, smtplib), each handed the Dialogue's socket instead of opening its own: see
imap.py, pop3.py and smtp.py. Each gives the Dialogue a `translate` function that turns
its library's exceptions into the ones below, which the Dialogue classifies.
"""

import contextlib
import heapq
import itertools
import logging
import os
import socket
import ssl
import threading
import time
from functools import lru_cache

from django.conf import settings

from serverprofiles.connectors import outbound
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Cause, Outcome
from serverprofiles.connectors.sasl import oauth_mechanism
from serverprofiles.connectors.scrub import quote_reply, scrub

logger = logging.getLogger(__name__)

GREETING_STEP = "reading the server's greeting"
# After LOGOUT/QUIT a server hangs up at once; one that does not is not waited for long.
DRAIN_SECONDS = 2.0
# A reply line longer than this is not a mail server speaking (the longest legitimate
# ones, IMAP capability lists, are a few hundred bytes).
MAX_LINE = 65536
MAX_QUOTED_LINE = 200
TLS_PORTS_HINT = "implicit TLS is usually port 993 for IMAP, 995 for POP3 and 465 for SMTP"
_A_SERVER = {"IMAP": "an IMAP", "POP3": "a POP3", "SMTP": "an SMTP"}


class ServerReplyError(Exception):
    """The server answered, but not with what the step needed; `reply` is what it said.

    Raise it only for a reply that is recognisably the protocol: it is quoted.
    """

    def __init__(self, reply, *, doing: str = ""):
        super().__init__(reply)
        self.reply, self.doing = reply, doing


class NotTheProtocol(Exception):
    """Whatever answered does not speak the protocol (an SSH banner, an HTTP page, a Redis
    error). Never quoted: it may be any service's output, secrets included."""


class AuthenticationRejected(Exception):
    """The server refused the credentials (or offered no way to present them)."""

    def __init__(
        self, reply=None, *, explanation: str = "", advice: str = "Check the user name and password."
    ):
        super().__init__(reply)
        self.reply, self.explanation, self.advice = reply, explanation, advice


class ConnectionDropped(Exception):
    """The server closed the connection in the middle of the dialogue."""


class SessionFailed(Exception):
    """A session (imap_session, pop3_session) could not be opened or broke: `outcome` is
    the failure with its cause (A4), as a connection test would report it."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.message)
        self.outcome = outcome


class CABundleError(Exception):
    """settings.MAIL_CA_BUNDLE names a file that cannot be used."""


@lru_cache(maxsize=8)
def _tls_context(bundle: str, modified: int | None) -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system trust store; hostnames verified
    if bundle:
        try:
            context.load_verify_locations(cafile=bundle)
        except (OSError, ssl.SSLError) as exc:
            raise CABundleError(f"the CA bundle in MAIL_CA_BUNDLE ({bundle}) cannot be loaded: {exc}")
    return context


def tls_context() -> ssl.SSLContext:
    """System trust store plus the optional extra CAs of settings.MAIL_CA_BUNDLE."""
    bundle = getattr(settings, "MAIL_CA_BUNDLE", "") or ""
    modified = None
    if bundle:
        try:
            modified = os.stat(bundle).st_mtime_ns
        except OSError as exc:
            raise CABundleError(f"the CA bundle in MAIL_CA_BUNDLE ({bundle}) cannot be read: {exc.strerror}")
    return _tls_context(bundle, modified)


class _Watchdog:
    """One background thread that fires every dialogue's deadline when it is due.

    Cheaper than a timer thread per connection: starting a thread costs a scheduling
    round trip on a busy machine, for each of thousands of connections.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, Deadline]] = []
        self._thread: threading.Thread | None = None
        self._sequence = itertools.count()

    def schedule(self, deadline: "Deadline", seconds: float) -> None:
        with self._condition:
            entry = (time.monotonic() + seconds, next(self._sequence), deadline)
            heapq.heappush(self._due, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mail-deadlines", daemon=True)
                self._thread.start()
            if self._due[0] is entry:
                # Due before whatever the thread waits for: wake it. (Dialogues mostly
                # share one timeout, so a new deadline is rarely the first due.)
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due:
                    self._condition.wait()
                due, _, deadline = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._due)
            deadline.fire()


_WATCHDOG = _Watchdog()


class Deadline:
    """Shuts the connection down when the whole dialogue has taken too long.

    Per-read socket timeouts bound each wait; this bounds their sum. It holds a
    duplicate of the socket's descriptor so that shutting down can never hit another
    connection that happens to reuse the number.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._done = False

    def start(self) -> None:
        _WATCHDOG.schedule(self, self.seconds)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.fired:
                raise TimeoutError("the dialogue's deadline has passed")
            if self._socket is None and not self._done:
                self._socket = sock.dup()

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            if self._socket is not None:
                self._socket.close()
                self._socket = None


class Dialogue:
    """Context manager around one connection; `outcome` holds the result afterwards.

    A check has its library client open the connection with `open_socket()`, keeps
    `step` up to date, and calls `succeed()`; whatever it raises becomes a failure with a
    cause, after `translate` has turned the library's exceptions into this module's.
    """

    def __init__(self, endpoint: Endpoint, *, translate=None):
        self.endpoint = endpoint
        self.step = "connecting"
        self.outcome: Outcome | None = None
        self._translate = translate or (lambda dialogue, exc: exc)
        self.connection = None  # the library's connection object, once made: for `translate`
        self._negotiating_tls = False
        self._sockets: list[socket.socket] = []
        self._deadline = Deadline(endpoint.deadline)

    # Running the dialogue -------------------------------------------------------

    def __enter__(self) -> "Dialogue":
        self._deadline.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is not None and isinstance(exc, Exception):
                self.outcome = self._classify(self._translate(self, exc))
        finally:
            self._close()
            self._deadline.cancel()
        if self.outcome is None:  # the check returned without deciding: a bug, not a pass
            self.outcome = Outcome.failure(
                Cause.SERVER_ERROR, f"The test of {self.endpoint.where} stopped while {self.step}."
            )
        return exc is None or isinstance(exc, Exception)

    def open_socket(self) -> socket.socket:
        """Connect to the configured host and port (and nowhere else, nowhere the outbound
        policy refuses), with TLS if asked: the socket a library client then speaks over."""
        endpoint = self.endpoint
        self.step = "connecting"
        sock = outbound.connect(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        self._sockets.append(sock)
        # A dialogue of short lines, each waited for: send each write at once. imaplib
        # sends a SASL response and its CRLF in two writes; with Nagle's algorithm the
        # CRLF waited for the server's delayed ACK, 40 ms an OAuth login on Linux.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._deadline.watch(sock)
        if endpoint.ssl:
            sock = self.secure(sock, "negotiating TLS")
        self.step = GREETING_STEP
        return sock

    def secure(self, sock: socket.socket, step: str) -> ssl.SSLSocket:
        """TLS on `sock`: the certificate verified for the configured host."""
        # Left set when the handshake raises, so that the failure is classified as TLS.
        self.step, self._negotiating_tls = step, True
        secured = tls_context().wrap_socket(
            sock, server_hostname=self.endpoint.host, do_handshake_on_connect=False
        )
        self._sockets.append(secured)
        secured.do_handshake()
        self._negotiating_tls = False
        return secured

    def starttls_context(self, step: str, buffered) -> "_StartTLS":
        """What to give a library's starttls()/stls() as its SSL context: checks that the
        server sent nothing after its go-ahead (`buffered()` is the library's reader of the
        plain-text connection), then secures the socket as `secure` does."""
        return _StartTLS(self, step, buffered)

    def succeed(self, message: str) -> None:
        self.outcome = Outcome.success(message)

    def renew_deadline(self) -> None:
        """Give the dialogue a whole deadline again from now: a mail-processing session
        renews it before each batch, so that each batch (not the whole session) must
        finish within DIALOGUE_TIMEOUTS timeouts. Raises TimeoutError if it already ran out."""
        if self._deadline.fired:
            raise TimeoutError("the dialogue's deadline has passed")
        renewed = Deadline(self.endpoint.deadline)
        renewed.start()
        if self._sockets:
            renewed.watch(self._sockets[0])  # the TCP socket: shutting it down ends TLS too
        previous, self._deadline = self._deadline, renewed
        previous.cancel()

    def close_politely(self, goodbye) -> None:
        """Say goodbye and wait for the server to hang up, so its slot is free (A6)."""
        self.step = "logging out"
        with contextlib.suppress(Exception):
            goodbye()

    def _close(self) -> None:
        # The library's reader of the socket too: after a failure its client is left in
        # a reference cycle with the traceback, and the socket would be closed only when
        # the garbage collector got to it.
        with contextlib.suppress(Exception):
            if reader := getattr(self.connection, "file", None):
                reader.close()
        for sock in self._sockets:
            with contextlib.suppress(Exception):
                sock.close()

    # Classifying failures (A4) --------------------------------------------------

    def _quote(self, reply) -> str:
        return quote_reply(reply, secrets=self.endpoint.secrets, username=self.endpoint.username)

    def _tls_hint(self) -> str:
        if self.step == GREETING_STEP and not self.endpoint.ssl:
            return " If this port expects implicit TLS, turn on Use SSL."
        return ""

    def _classify(self, exc: Exception) -> Outcome:
        e, step = self.endpoint, self.step
        where = e.where
        if self._deadline.fired:
            return Outcome.failure(
                Cause.TIMED_OUT,
                f"{where} did not finish the dialogue within {e.deadline:g} s "
                f"({step} when time ran out). Check the server, or raise the connection timeout.",
            )
        if isinstance(exc, CABundleError):
            return Outcome.failure(Cause.TLS_HANDSHAKE_FAILED, f"{exc} (needed for {where}).")
        if isinstance(exc, outbound.DestinationNotAllowed):
            return Outcome.failure(
                Cause.DESTINATION_NOT_ALLOWED,
                f"{where} cannot be tested: {exc}. Nothing was contacted. Enter the mail server's own "
                "host name: loopback, link-local and cloud metadata addresses are refused unless the "
                "deployment allows them.",
            )
        if isinstance(exc, socket.gaierror):
            return Outcome.failure(
                Cause.HOST_NOT_FOUND,
                f"the host name {e.host} does not resolve ({e.label}, port {e.port}). "
                "Check the server location for typing errors, and that this machine's DNS can see it.",
            )
        if isinstance(exc, ConnectionRefusedError):
            return Outcome.failure(
                Cause.CONNECTION_REFUSED,
                f"{where} refused the connection: nothing accepts connections on that port. "
                "Check the port and that the mail server is running.",
            )
        if isinstance(exc, TimeoutError):
            return Outcome.failure(
                Cause.TIMED_OUT,
                f"no answer from {where} within {e.timeout:g} s while {step}. Check the host, the "
                f"port and any firewall in between, or raise the connection timeout.{self._tls_hint()}",
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or exc.reason or "the certificate could not be verified"
            return Outcome.failure(
                Cause.CERTIFICATE_REJECTED,
                f"{reason}, presented by {where}. The certificate is not trusted for {e.host}: install "
                "a certificate from a trusted authority on the server, or add your private CA to "
                "MAIL_CA_BUNDLE.",
            )
        if self._negotiating_tls and isinstance(exc, (ssl.SSLError, OSError, EOFError, ConnectionDropped)):
            reason = _ssl_reason(exc)
            return Outcome.failure(
                Cause.TLS_HANDSHAKE_FAILED,
                f"with {where} while {step}: {reason}. Check Use SSL and the port ({TLS_PORTS_HINT}); "
                "without SSL the connection is secured with STARTTLS where the server offers it.",
            )
        if isinstance(exc, AuthenticationRejected):
            said = f' The server said: "{self._quote(exc.reply)}".' if exc.reply else ""
            explanation = exc.explanation or (
                f"{where} rejected the user name {e.username!r} or its password."
            )
            return Outcome.failure(Cause.AUTHENTICATION_FAILED, f"{explanation}{said} {exc.advice}")
        if isinstance(exc, NotTheProtocol):
            return Outcome.failure(
                Cause.SERVER_ERROR,
                f"{where} is not {_A_SERVER[e.label]} server: it answered with something other than "
                f"{e.label} while {step} (not shown). Check the server location and the port.",
            )
        if isinstance(exc, ServerReplyError):
            doing = exc.doing or step
            quoted = self._quote(exc.reply)
            return Outcome.failure(
                Cause.SERVER_ERROR, f'{where} answered with an error while {doing}: "{quoted}".'
            )
        if isinstance(exc, (ConnectionDropped, EOFError, ConnectionError, ssl.SSLError)):
            return Outcome.failure(
                Cause.SERVER_ERROR,
                f"{where} closed the connection unexpectedly while {step}. Check that this port "
                f"serves {e.label}{' over implicit TLS' if e.ssl else ''}, and the server's log."
                f"{self._tls_hint()}",
            )
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            if step == "connecting":
                return Outcome.failure(
                    Cause.CONNECTION_REFUSED,
                    f"could not connect to {where}: {reason}. Check the server location and the network.",
                )
            return Outcome.failure(
                Cause.SERVER_ERROR, f"the connection to {where} broke while {step}: {reason}."
            )
        detail = scrub(str(exc), secrets=e.secrets, username=e.username)
        logger.warning("Unexpected %s while %s with %s: %s", type(exc).__name__, step, where, detail)
        return Outcome.failure(
            Cause.SERVER_ERROR,
            f"{where} gave an answer the test could not understand while {step} "
            f'({type(exc).__name__}: "{self._quote(detail)}").',
        )


# What a library client or the Dialogue raises when the server or the network fails; a
# session's caller's own exceptions (a database error, say) are anything else.
CONNECTION_ERRORS = (
    OSError,
    EOFError,
    ServerReplyError,
    NotTheProtocol,
    AuthenticationRejected,
    ConnectionDropped,
    CABundleError,
    outbound.DestinationNotAllowed,
)


class MailSession:
    """An open, logged-in connection for mail processing: `client` is the protocol
    library's client. Name the step before each command (`session.step = ...`: a failure
    says what was being done) and call `renew()` before each batch (the dialogue's
    deadline, and the caller's own lease through `on_renew`)."""

    def __init__(self, dialogue: "Dialogue", client):
        self.dialogue, self.client = dialogue, client
        self.on_renew = None

    @property
    def step(self) -> str:
        return self.dialogue.step

    @step.setter
    def step(self, value: str) -> None:
        self.dialogue.step = value

    def renew(self) -> None:
        self.dialogue.renew_deadline()
        if self.on_renew is not None:
            self.on_renew()


@contextlib.contextmanager
def session_dialogue(endpoint: Endpoint, translate, library_errors: tuple = ()):
    """A Dialogue for a session that stays open while its caller works (mail processing).

    The block (the protocol's session function, and through it its caller) runs inside the
    Dialogue: the server's and the network's failures (CONNECTION_ERRORS and
    `library_errors`) are classified as in a test and raised as SessionFailed, as is a
    session that ends without success; anything else raised in the block is the
    caller's and passes through unchanged, after the connection is closed.
    """
    escaped = None
    with Dialogue(endpoint, translate=translate) as dialogue:
        try:
            yield dialogue
        except CONNECTION_ERRORS + library_errors:
            raise  # classified by the Dialogue
        except Exception as exc:
            escaped = exc
    if escaped is not None:
        raise escaped
    if not dialogue.outcome.ok:
        raise SessionFailed(dialogue.outcome)


def session_refused(dialogue: "Dialogue") -> SessionFailed:
    """The session could not be opened (`dialogue.outcome` says why, or no credentials)."""
    outcome = dialogue.outcome
    if outcome is None or outcome.ok:
        outcome = Outcome.failure(
            Cause.AUTHENTICATION_FAILED,
            f"no credentials to log in to {dialogue.endpoint.where} with: mail cannot be read without them.",
        )
    return SessionFailed(outcome)


class _StartTLS:
    """An SSL context as far as imaplib, poplib and smtplib use one (`wrap_socket`)."""

    def __init__(self, dialogue: Dialogue, step: str, buffered):
        self._dialogue, self._step, self._buffered = dialogue, step, buffered

    def wrap_socket(self, sock: socket.socket, server_hostname=None) -> ssl.SSLSocket:
        pending = _pending(self._buffered(), sock)
        if pending:
            # Plain-text bytes that came with the go-ahead would be read as if they had
            # come over TLS (a STARTTLS response injection): refuse them.
            raise ServerReplyError(
                pending[:MAX_QUOTED_LINE] + b" (sent before the TLS handshake, so refused)", doing=self._step
            )
        return self._dialogue.secure(sock, self._step)


def _pending(reader, sock: socket.socket) -> bytes:
    """What `reader` (a buffered reader of `sock`) holds or could read at once, without waiting."""
    if reader is None:
        return b""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return reader.peek(MAX_QUOTED_LINE) or b""
    except (OSError, ValueError):
        return b""
    finally:
        sock.settimeout(timeout)


def drain(sock: socket.socket | None, endpoint: Endpoint) -> None:
    """Read until the server hangs up, for at most a couple of seconds: after LOGOUT or
    QUIT, so that the server's slot is free when the check returns (A6).

    Over TLS the reads end at the server's close_notify, which comes just before it
    closes the connection: the TLS layer is closed too, and the plain socket read until
    the server's own hang-up, so that a mailbox tested next through the same connection
    slot never overlaps it."""
    if sock is None:
        return
    with contextlib.suppress(Exception):
        sock.settimeout(min(endpoint.timeout, DRAIN_SECONDS))
        while sock.recv(4096):
            pass
        if isinstance(sock, ssl.SSLSocket):
            plain = sock.unwrap()
            while plain.recv(4096):
                pass


def token_refused(endpoint: Endpoint, reply) -> AuthenticationRejected:
    """The server refused the access token: its words, and what usually fixes it (a caller
    that knows the provider adds its own fix to the outcome: Outcome.extended)."""
    return AuthenticationRejected(
        reply,
        explanation=f"{endpoint.where} refused the OAuth 2.0 access token for {endpoint.username}.",
        advice=f"Check that the app registered with the identity provider may use {endpoint.label} "
        "for this mailbox.",
    )


def oauth_mechanism_offered(endpoint: Endpoint, offered) -> str:
    """The SASL mechanism to present the access token with; refused if the server has none."""
    mechanism = oauth_mechanism(offered)
    if mechanism is None:
        raise AuthenticationRejected(
            explanation=f"{endpoint.where} offers no OAuth 2.0 login (SASL XOAUTH2 or OAUTHBEARER) "
            f"on this connection, only {', '.join(sorted(offered)) or 'none'}.",
            advice="Check the server location, or authenticate with a password.",
        )
    return mechanism


def security(endpoint: Endpoint, *, upgraded: bool, command: str) -> str:
    """How the connection was secured, for success messages."""
    if endpoint.ssl:
        return "over TLS"
    return f"with {command}" if upgraded else f"in plain text (the server offers no {command})"


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, (ConnectionDropped, EOFError, ConnectionError, ssl.SSLEOFError)):
        return "the server closed the connection during the handshake"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__

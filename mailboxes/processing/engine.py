"""One pass over one mailbox (SPEC 8): fetch its new mail, record it, then delete it from
the server or remember it.

    result = process_mailbox(mailbox)   # a PassResult; never raises for a server's fault

Leases and scheduling are the scheduler's; the pass holds one of the profile's connection
slots while its connection is open (Maximum Concurrent Connections, across processes),
renewing the slot's lease and the connection's deadline before each batch.

The order that loses nothing and records nothing twice:
1. Metadata first, in batches (IMAP: RFC822.SIZE and INTERNALDATE; POP3: UIDL and LIST):
   mail received before Process Email Received After (else the profile's Process Email
   From) is skipped, and a message over settings.MAIL_MAX_MESSAGE_SIZE is fetched as its
   headers only (recorded with Headers Only and a warning alert).
2. Bodies in groups of at most BODY_GROUP messages or BODY_GROUP_BYTES, so a worker holds
   one group in memory, never a whole mailbox.
3. Each message recorded through services/emails.py (raw file saved, row inserted; the
   (mailbox, digest) constraint refuses a second copy).
4. Only then: deleted from the server (Delete Emails After Processing), or remembered
   (IMAP: FolderSync.last_uid under its UIDVALIDITY; POP3: SeenMessage by UIDL). A
   message whose recording failed is neither deleted nor remembered: the next pass tries
   it again.

IMAP deletes with UID STORE +FLAGS \\Deleted then UID EXPUNGE (UIDPLUS, RFC 4315), which
removes exactly the recorded messages. A server without UIDPLUS gets a plain EXPUNGE only
when no other message of the folder is flagged \\Deleted (an EXPUNGE would remove those
too); otherwise the recorded messages stay flagged, and the next pass, finding them
recorded already, tries again. With deletion on, the whole folder is read each pass (the
metadata only, then the bodies of what is not recorded or deleted yet), so a message
left behind by a pass that failed after recording it is deleted by the next.

Forward mailboxes: each message/rfc822 attachment's original is recorded once for each
user or queue mailbox among its To and Cc whose Incoming Email is Forward Mailbox. A user
or queue mailbox names no particular forward mailbox, so every such recipient is served by
whichever forward mailbox the original reached. A message with no such attachment, or an
original that matches no mailbox (or only unapproved or inactive ones), is moved to the
folder Unprocessed (IMAP; created when missing) or left on the server and remembered
(POP3), with a warning alert on the forward mailbox naming the reason; never deleted.
"""

import email.policy
import imaplib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models.functions import Lower
from django.utils import timezone

from mailboxes.models import Email, FolderSync, Mailbox, MailboxAlert, OrganizationSettings, SeenMessage
from mailboxes.models.alerts import AlertSeverity
from mailboxes.models.choices import ApprovalStatus, IncomingMethod
from mailboxes.processing.eligibility import not_processed_reason
from mailboxes.processing.results import PassResult
from mailboxes.services.emails import (
    ParsedMessage,
    email_prepare,
    emails_commit,
    message_parse,
    processing_alert,
    recorded_digests,
    recorded_pairs,
)
from mailboxes.services.endpoints import mailbox_endpoint
from serverprofiles.connection_cap import (
    NoConnectionSlot,
    connection_slot,
    connection_slot_lease,
    connection_slot_renew,
)
from serverprofiles.connectors import Cause, Outcome
from serverprofiles.connectors.dialogue import SessionFailed
from serverprofiles.connectors.imap import imap_session
from serverprofiles.connectors.pop3 import pop3_session
from serverprofiles.connectors.scrub import quote_reply
from serverprofiles.oauth import mail_server_refused_token

logger = logging.getLogger(__name__)

INBOX = "INBOX"
UNPROCESSED = "Unprocessed"
# UIDs whose metadata one FETCH asks for.
METADATA_BATCH = 500
# Bodies fetched (and held in memory) at a time.
BODY_GROUP = 50
BODY_GROUP_BYTES = 8 * 1024 * 1024
# A message's literal may be this much larger than the size limit (a server's size and
# its literal can differ by line endings).
LITERAL_MARGIN = 1024 * 1024
# How a forwarded original is written back to bytes: CRLF, headers not refolded.
ORIGINAL_POLICY = email.policy.SMTP.clone(max_line_length=None)
# Causes after which trying again soon cannot help (SPEC 8's permanent failures).
PERMANENT_CAUSES = {
    Cause.AUTHENTICATION_FAILED,
    Cause.TOKEN_REFUSED,
    Cause.TOKEN_REJECTED,
    Cause.PASSWORD_FOR_ANOTHER_SERVER,
    Cause.SECRET_FOR_ANOTHER_TOKEN_URL,
    Cause.SECRET_FOR_ANOTHER_SERVER,
    Cause.ENCRYPTION_REQUIRED,
    Cause.CERTIFICATE_REJECTED,
    Cause.DESTINATION_NOT_ALLOWED,
    Cause.NOT_SUPPORTED,
    Cause.APPROVAL_REQUIRED,
}


class MailboxGone(Exception):
    """The server refused to open the folder (deleted, renamed, no rights): permanent."""


class SlotLost(Exception):
    """The connection slot's lease ran out and another process took it."""


def process_mailbox(
    mailbox: Mailbox,
    *,
    now: datetime | None = None,
    slot_wait: float | None = None,
    org: OrganizationSettings | None = None,
) -> PassResult:
    """One pass over `mailbox`. A mailbox that is not processed (eligibility) comes back
    with `skipped` and `cause` saying why, failed=0, transient=False: not a failure of the
    server. One whose profile had no free connection within `slot_wait` seconds (default:
    connection_cap's wait limit) comes back skipped with transient=True. Every failure of
    the server or the connection comes back in `cause` (A4's words, never a secret),
    failed=1, `transient` telling the scheduler whether to back off and retry (timeout,
    refused, a dropped connection, a server error) or count a permanent failure
    (authentication, a refused token, a password entered for another server, the folder
    refused: "mailbox gone"). `now`: the time recorded as received for mail whose
    headers say none. `org`: the organisation's settings, when the caller has them loaded.

    The pass alerts about messages (could not be recorded or parsed, headers only,
    unmatched); its own failure is returned, not alerted: the scheduler records it (the
    error alert, the back-off, disabling after repeated failures)."""
    result = PassResult(mailbox=mailbox.email)
    org = org or OrganizationSettings.load()
    reason = not_processed_reason(mailbox, org)
    if reason is None and mailbox.server_profile.incoming_protocol not in ("imap", "pop3"):
        reason = "its server profile's incoming server is not IMAP or POP3"
    if reason is not None:
        result.skipped = reason
        result.cause = f"Not processed: {reason}."
        return result
    endpoint = mailbox_endpoint(mailbox, "incoming")
    if isinstance(endpoint, Outcome):
        return _failed(result, endpoint)
    run = _Run(mailbox, org, result, now or timezone.now())
    profile = mailbox.server_profile
    lease = connection_slot_lease(profile)
    try:
        with connection_slot(profile, lease=lease, wait=slot_wait) as held:

            def renew():
                if held is not None and connection_slot_renew(held, lease) is None:
                    raise SlotLost

            largest = settings.MAIL_MAX_MESSAGE_SIZE + LITERAL_MARGIN
            if endpoint.protocol == "imap":
                with imap_session(endpoint, max_literal=largest) as session:
                    session.on_renew = renew
                    _IMAPPass(run, session).process()
            else:
                with pop3_session(endpoint, max_line=largest) as session:
                    session.on_renew = renew
                    _POP3Pass(run, session).process()
                result.deleted += run.pop3_deleted  # carried out by the server at QUIT
    except SessionFailed as exc:
        outcome = exc.outcome
        if endpoint.access_token and outcome.cause == Cause.AUTHENTICATION_FAILED:
            outcome = mail_server_refused_token(
                outcome, provider=profile.oauth_provider, protocol=endpoint.protocol
            )
        return _failed(result, outcome)
    except MailboxGone as exc:
        reply = quote_reply(str(exc), secrets=endpoint.secrets, username=endpoint.username)
        outcome = Outcome.failure(
            Cause.SERVER_ERROR, f'{endpoint.where} answered with an error while opening {INBOX}: "{reply}".'
        )
        return _failed(result, outcome, transient=False)
    except NoConnectionSlot as exc:
        result.skipped = "every connection the server profile allows is in use"
        result.cause = f"Not processed now: {exc}"
        result.transient = True
    except SlotLost:
        result.failed += 1
        result.cause = (
            "The pass stopped: its connection slot's lease ran out and another process took it. "
            "It goes on at the next poll."
        )
        result.transient = True
    return result


def _failed(result: PassResult, outcome: Outcome, *, transient: bool | None = None) -> PassResult:
    result.failed += 1
    result.cause = outcome.message
    result.transient = outcome.cause not in PERMANENT_CAUSES if transient is None else transient
    return result


@dataclass
class _Run:
    mailbox: Mailbox
    org: OrganizationSettings
    result: PassResult
    now: datetime
    pop3_deleted: int = 0
    cutoff: datetime | None = field(init=False)
    limit: int = field(init=False)

    def __post_init__(self):
        self.cutoff = self.mailbox.process_email_after or self.mailbox.server_profile.process_email_from
        self.limit = settings.MAIL_MAX_MESSAGE_SIZE

    def too_old(self, received_on: datetime | None) -> bool:
        return self.cutoff is not None and received_on is not None and received_on < self.cutoff

    def alert(self, severity: str, message: str) -> None:
        processing_alert(self.mailbox, severity, message)


@dataclass
class _Fetched:
    """One message of a group: where it is on the server, its bytes, what they say."""

    key: object  # IMAP UID or POP3 message number
    raw: bytes
    size: int
    received_on: datetime | None
    headers_only: bool
    parsed: ParsedMessage | None = None
    done: bool = False  # recorded (now or before): may be deleted or remembered
    unmatched: str = ""  # forward mailboxes: why it goes to Unprocessed


class _Handler:
    """What a pass does with a group of fetched messages: record them (own mailbox) or
    route their forwarded originals (forward mailbox). The group's raw files are saved
    one by one, its rows inserted in one statement (services/emails.py), its alerts
    written together: a few queries a group, one INSERT's worth a message."""

    def __init__(self, run: _Run):
        self.run = run
        self.mailbox = run.mailbox

    def handle(self, group: list[_Fetched]) -> None:
        for item in group:
            item.parsed = message_parse(item.raw)
        self.alerts: list[MailboxAlert] = []
        self.pending: dict[tuple[int, str], Email] = {}  # (mailbox, digest) -> row to insert
        needs: dict[int, list[tuple[int, str]]] = {}  # item -> the rows it needs
        failed: set[int] = set()
        if self.mailbox.is_forward:
            self._route(group, needs, failed)
        else:
            known = recorded_digests(self.mailbox.pk, (item.parsed.digest for item in group))
            for item in group:
                key = (self.mailbox.pk, item.parsed.digest)
                needs[id(item)] = [key]
                if item.parsed.digest not in known and not self._prepare(
                    self.mailbox, item, item.raw, item.parsed
                ):
                    failed.add(id(item))
        inserted, present = emails_commit(list(self.pending.values())) if self.pending else ([], set())
        for record in inserted:
            self.run.result.recorded += 1
            self._alerts_for(record)
        for item in group:
            if item.unmatched or id(item) in failed:
                continue
            wanted = needs.get(id(item), [])
            missing = [key for key in wanted if key in self.pending and key not in present]
            if missing:
                self.run.result.failed += 1
            item.done = not missing
        if self.alerts:
            MailboxAlert.objects.bulk_create(self.alerts)

    def _prepare(
        self, target: Mailbox, item: _Fetched, raw: bytes, parsed: ParsedMessage, forward=None
    ) -> bool:
        """Save one message's raw file for `target`, its row to be inserted with the group's;
        False when the file could not be saved (the message is then tried again next pass)."""
        key = (target.pk, parsed.digest)
        if key in self.pending:  # the same message twice in the group
            return True
        received_on = item.received_on or parsed.received_on or parsed.sent_on or self.run.now
        try:
            self.pending[key] = email_prepare(
                target,
                raw,
                parsed,
                received_on=received_on,
                size=item.size if forward is None else len(raw),
                headers_only=item.headers_only,
                forward_mailbox=forward,
            )
        except Exception as exc:
            logger.warning("Saving a message of %s failed: %s", self.mailbox.email, type(exc).__name__)
            self.run.result.failed += 1
            self._alert(
                AlertSeverity.ERROR,
                f"A message ({_describe(parsed)}) could not be recorded ({type(exc).__name__}); it stays "
                "on the server and is tried again at the next pass.",
            )
            return False
        return True

    def _alerts_for(self, email: Email) -> None:
        described = (
            f'"{email.subject[:80] or "(no subject)"}", Message-ID {email.message_id[:120] or "(none)"}'
        )
        if email.malformed:
            self._alert(
                AlertSeverity.ERROR,
                f"A message ({described}) could not be parsed. It was recorded whole (its raw "
                "message kept); its fields may be empty.",
            )
        if email.headers_only:
            self._alert(
                AlertSeverity.WARNING,
                f"A message ({described}) of {email.size:,} bytes is over the limit of "
                f"{self.run.limit:,} bytes: only its headers were recorded.",
            )

    def _alert(self, severity: str, message: str) -> None:
        self.alerts.append(
            MailboxAlert(
                mailbox=self.mailbox,
                severity=severity,
                workload=MailboxAlert.Workload.INCOMING,
                message=message,
            )
        )

    # Forward mailboxes --------------------------------------------------------------

    def _route(self, group: list[_Fetched], needs: dict, failed: set) -> None:
        originals = {id(item): _originals(item.parsed) for item in group}
        every = [parsed for found in originals.values() for _raw, parsed in found]
        candidates = self._candidates({address for parsed in every for address in parsed.addresses()})
        routes = {  # per item: each original with its target mailboxes, or why none
            id(item): [
                (raw, parsed, *self._targets(parsed, candidates)) for raw, parsed in originals[id(item)]
            ]
            for item in group
        }
        target_ids = {
            target.pk for found in routes.values() for *_o, targets, _r in found for target in targets
        }
        known = recorded_pairs(target_ids, {parsed.digest for parsed in every})
        for item in group:
            if not routes[id(item)]:
                item.unmatched = "it is not a forwarded message (it has no message/rfc822 attachment)"
                continue
            reasons, prepared_all, wanted = [], True, []
            for raw, parsed, targets, reason in routes[id(item)]:
                if not targets:
                    reasons.append(reason)
                for target in targets:
                    wanted.append((target.pk, parsed.digest))
                    if (target.pk, parsed.digest) not in known:
                        prepared_all &= self._prepare(target, item, raw, parsed, forward=self.mailbox)
            needs[id(item)] = wanted
            if not prepared_all:
                failed.add(id(item))  # stays where it is: the next pass tries again
            elif reasons:
                # Unprocessed, its other originals recorded all the same.
                item.unmatched = "; ".join(reasons)

    def _candidates(self, addresses: set[str]) -> dict[str, Mailbox]:
        """The user and queue mailboxes with these addresses (one query)."""
        if not addresses:
            return {}
        mailboxes = (
            Mailbox.objects.alias(email_lower=Lower("email"))
            .filter(email_lower__in=addresses)
            .exclude(kind=Mailbox.Kind.FORWARD)
            .only("id", "kind", "email", "state", "approval_status", "incoming_method", "user_id", "queue_id")
        )
        return {mailbox.email.lower(): mailbox for mailbox in mailboxes}

    def _targets(self, parsed: ParsedMessage, candidates: dict[str, Mailbox]) -> tuple[list[Mailbox], str]:
        """The mailboxes to record `parsed` for, or why there are none."""
        targets, refused = [], []
        for address in sorted(parsed.addresses()):
            mailbox = candidates.get(address)
            if mailbox is None:
                continue
            if mailbox.incoming_method != IncomingMethod.FORWARD_MAILBOX:
                refused.append(f"{mailbox.email} does not receive its email through a forward mailbox")
            elif mailbox.state != Mailbox.State.ACTIVE:
                refused.append(f"the mailbox {mailbox.email} is inactive")
            elif (
                self.run.org.approval_required_for(mailbox.kind)
                and mailbox.approval_status != ApprovalStatus.APPROVED
            ):
                refused.append(f"the mailbox {mailbox.email} is not approved")
            else:
                targets.append(mailbox)
        if targets:
            return targets, ""
        if refused:
            return (
                [],
                f"the original ({_describe(parsed)}) matches no mailbox that may receive it: "
                + ", ".join(refused),
            )
        recipients = ", ".join(sorted(parsed.addresses())) or "none"
        return [], f"the original ({_describe(parsed)}) matches no mailbox (recipients: {recipients})"


def _originals(parsed: ParsedMessage) -> list[tuple[bytes, ParsedMessage]]:
    """The forwarded originals of a message: each message/rfc822 part, as bytes and parsed."""
    message = parsed.message
    if message is None:
        return []
    found = []
    for part in message.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        try:
            raw = part.get_payload(0).as_bytes(policy=ORIGINAL_POLICY)
        except Exception as exc:  # an attachment the parser made nothing of: not an original
            logger.info("A forwarded attachment could not be read: %s", type(exc).__name__)
            continue
        found.append((raw, message_parse(raw)))
    return found


def _describe(parsed: ParsedMessage | None) -> str:
    if parsed is None:
        return "unknown"
    subject = parsed.subject[:80] or "(no subject)"
    return f'"{subject}", Message-ID {parsed.message_id[:120] or "(none)"}'


# IMAP ---------------------------------------------------------------------------------


class _IMAPPass:
    def __init__(self, run: _Run, session):
        self.run, self.session = run, session
        self.client = session.client
        self.mailbox = run.mailbox
        self.handler = _Handler(run)
        self.deleting = self.mailbox.delete_after_processing
        # INTERNALDATE with its zone, not turned into this machine's local time.
        self.client.normalise_times = False
        capabilities = session.capabilities
        self.uidplus = "UIDPLUS" in capabilities
        self.move = "MOVE" in capabilities
        self.unprocessed_ready = False

    def process(self) -> None:
        session = self.session
        session.step = f"opening {INBOX}"
        try:
            status = self.client.select_folder(INBOX, readonly=not (self.deleting or self.mailbox.is_forward))
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise MailboxGone(self.client.connection.last_reply.decode("utf-8", "replace").strip()) from exc
        uidvalidity = int(status[b"UIDVALIDITY"])
        folder, _ = FolderSync.objects.get_or_create(
            mailbox=self.mailbox, folder=INBOX, defaults={"uidvalidity": uidvalidity}
        )
        if folder.uidvalidity != uidvalidity:
            # The server renumbered the folder: read it all again; digests keep it from
            # being recorded twice.
            folder.uidvalidity, folder.last_uid = uidvalidity, 0
            folder.save(update_fields=["uidvalidity", "last_uid"])
            self.run.alert(
                AlertSeverity.INFORMATION,
                f"The server renumbered {INBOX} (its UIDVALIDITY changed): it is read again from the "
                "start; messages recorded before are not recorded twice.",
            )
        self.folder = folder
        session.step = "listing new messages (UID SEARCH)"
        if self.deleting:
            # Everything still here, flagged \Deleted or not: what a pass that failed after
            # recording left behind is found again — also between its STORE \Deleted and
            # its EXPUNGE — and is expunged this time (recorded already, not twice).
            uids = sorted(self.client.search(["ALL"]))
            self.high_water = None
        else:
            uids = sorted(
                uid
                for uid in self.client.search(["UID", f"{folder.last_uid + 1}:*"])
                if uid > folder.last_uid
            )
            self.high_water = folder.last_uid
        for start in range(0, len(uids), METADATA_BATCH):
            self._metadata_batch(uids[start : start + METADATA_BATCH])

    def _metadata_batch(self, uids: list[int]) -> None:
        self.session.renew()
        self.session.step = "reading message sizes and dates (FETCH RFC822.SIZE INTERNALDATE)"
        metadata = self.client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
        group: list[tuple[int, int, datetime | None]] = []
        group_bytes = 0
        skipped = []
        for uid in uids:
            data = metadata.get(uid)
            if data is None:  # expunged meanwhile
                skipped.append(uid)
                continue
            size = int(data.get(b"RFC822.SIZE", 0))
            received_on = _aware(data.get(b"INTERNALDATE"))
            if self.run.too_old(received_on):
                skipped.append(uid)
                continue
            if group and (
                len(group) >= BODY_GROUP or group_bytes + min(size, self.run.limit) > BODY_GROUP_BYTES
            ):
                self._body_group(group, skipped)
                group, group_bytes, skipped = [], 0, []
            group.append((uid, size, received_on))
            group_bytes += min(size, self.run.limit)
        self._body_group(group, skipped)

    def _body_group(self, group: list[tuple[int, int, datetime | None]], skipped: list[int]) -> None:
        fetched: list[_Fetched] = []
        if group:
            self.session.renew()
            whole = [uid for uid, size, _ in group if size <= self.run.limit]
            large = [uid for uid, size, _ in group if size > self.run.limit]
            bodies = {}
            if whole:
                self.session.step = f"fetching {len(whole)} messages (FETCH BODY.PEEK[])"
                bodies.update(
                    {uid: d.get(b"BODY[]") for uid, d in self.client.fetch(whole, ["BODY.PEEK[]"]).items()}
                )
            if large:
                self.session.step = f"fetching the headers of {len(large)} messages (FETCH BODY.PEEK[HEADER])"
                response = self.client.fetch(large, ["BODY.PEEK[HEADER]"])
                bodies.update({uid: d.get(b"BODY[HEADER]") for uid, d in response.items()})
            for uid, size, received_on in group:
                raw = bodies.get(uid)
                if raw is None:  # expunged meanwhile
                    skipped.append(uid)
                    continue
                fetched.append(_Fetched(uid, raw, size, received_on, headers_only=size > self.run.limit))
            del bodies
            self.run.result.fetched += len(fetched)
            self.handler.handle(fetched)
        self._settle(fetched, skipped)

    def _settle(self, fetched: list[_Fetched], skipped: list[int]) -> None:
        """After the group is recorded: move the unmatched, delete or remember the rest."""
        unmatched = [item for item in fetched if item.unmatched]
        for item in unmatched:
            self._to_unprocessed(item)
        done = [item.key for item in fetched if item.done and not item.unmatched]
        if self.deleting and done:
            self._delete(done)
        if self.high_water is not None:
            # The mark moves past every UID handled, up to the first that failed.
            handled = {item.key for item in fetched if item.done or item.unmatched} | set(skipped)
            pending = sorted({item.key for item in fetched} | set(skipped))
            for uid in pending:
                if uid not in handled:
                    self.high_water = None
                    break
                self.high_water = uid
            if self.high_water is not None and self.high_water != self.folder.last_uid:
                self.folder.last_uid = self.high_water
                FolderSync.objects.filter(pk=self.folder.pk).update(last_uid=self.high_water)

    def _delete(self, uids: list[int]) -> None:
        self.session.step = f"deleting {len(uids)} recorded messages (UID STORE \\Deleted)"
        self.client.delete_messages(uids)
        if self.uidplus:
            self.session.step = "expunging the recorded messages (UID EXPUNGE)"
            self.client.uid_expunge(uids)
        else:
            flagged = set(self.client.search(["DELETED"]))
            if not flagged <= set(uids):
                return  # an EXPUNGE would remove others' messages too: they stay flagged
            self.session.step = "expunging the recorded messages (EXPUNGE)"
            self.client.expunge()
        self.run.result.deleted += len(uids)

    def _to_unprocessed(self, item: _Fetched) -> None:
        self.session.step = f"moving a message to the folder {UNPROCESSED}"
        if not self.unprocessed_ready:
            if not self.client.folder_exists(UNPROCESSED):
                self.client.create_folder(UNPROCESSED)
            self.unprocessed_ready = True
        if self.move:
            self.client.move([item.key], UNPROCESSED)
        else:
            self.client.copy([item.key], UNPROCESSED)
            self.client.delete_messages([item.key])
            if self.uidplus:
                self.client.uid_expunge([item.key])
        self.run.result.unmatched += 1
        self.run.alert(
            AlertSeverity.WARNING,
            f"A message ({_describe(item.parsed)}) was moved to the folder {UNPROCESSED}: {item.unmatched}.",
        )


def _aware(moment) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


# POP3 ---------------------------------------------------------------------------------


class _POP3Pass:
    def __init__(self, run: _Run, session):
        self.run, self.session = run, session
        self.client = session.client
        self.mailbox = run.mailbox
        self.handler = _Handler(run)
        self.deleting = self.mailbox.delete_after_processing

    def process(self) -> None:
        session = self.session
        session.step = "listing the messages (UIDL)"
        uidls = {}
        for line in self.client.uidl()[1]:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            uidls[int(number)] = uidl.strip()
        session.step = "reading message sizes (LIST)"
        sizes = {}
        for line in self.client.list()[1]:
            number, _, size = line.decode("ascii", "replace").partition(" ")
            sizes[int(number)] = int(size.split()[0]) if size.strip() else 0
        seen = set(
            SeenMessage.objects.filter(mailbox=self.mailbox, uidl__in=list(uidls.values())).values_list(
                "uidl", flat=True
            )
        )
        numbers = [n for n in sorted(uidls) if uidls[n] not in seen]
        group, group_bytes = [], 0
        for number in numbers:
            size = sizes.get(number, 0)
            if group and (
                len(group) >= BODY_GROUP or group_bytes + min(size, self.run.limit) > BODY_GROUP_BYTES
            ):
                self._group(group, uidls, sizes)
                group, group_bytes = [], 0
            group.append(number)
            group_bytes += min(size, self.run.limit)
        if group:
            self._group(group, uidls, sizes)

    def _group(self, numbers: list[int], uidls: dict[int, str], sizes: dict[int, int]) -> None:
        self.session.renew()
        fetched, remember = [], []
        for number in numbers:
            size = sizes.get(number, 0)
            headers_only = size > self.run.limit
            if self.run.cutoff is not None or headers_only:
                self.session.step = f"reading a message's headers (TOP {number} 0)"
                headers = b"\r\n".join(self.client.top(number, 0)[1]) + b"\r\n"
                parsed = message_parse(headers)
                if self.run.too_old(parsed.received_on or parsed.sent_on):
                    remember.append(uidls[number])
                    continue
                if headers_only:
                    fetched.append(_Fetched(number, headers, size, None, headers_only=True))
                    continue
            self.session.step = f"fetching a message (RETR {number})"
            raw = b"\r\n".join(self.client.retr(number)[1]) + b"\r\n"
            fetched.append(_Fetched(number, raw, size, None, headers_only=False))
        self.run.result.fetched += len(fetched)
        self.handler.handle(fetched)
        for item in fetched:
            if item.unmatched:
                self.run.result.unmatched += 1
                self.run.alert(
                    AlertSeverity.WARNING,
                    f"A message ({_describe(item.parsed)}) was left on the POP3 server and will not be "
                    f"fetched again: {item.unmatched}.",
                )
                remember.append(uidls[item.key])
            elif item.done and self.deleting:
                self.session.step = f"deleting a recorded message (DELE {item.key})"
                self.client.dele(item.key)
                self.run.pop3_deleted += 1
            elif item.done:
                remember.append(uidls[item.key])
        if remember:
            SeenMessage.objects.bulk_create(
                [SeenMessage(mailbox=self.mailbox, uidl=uidl) for uidl in remember], ignore_conflicts=True
            )

"""What one pass over one mailbox did."""

from dataclasses import dataclass


@dataclass
class PassResult:
    """One pass over one mailbox, counted as `process_mailboxes --json` prints it.

    `failed` counts the messages that could not be handled plus the pass itself when it
    could not connect, log in or read the folder; `cause` is then the reason in SPEC A4's
    words (never a secret). `transient` tells the scheduler to back off and retry (timeout,
    refused, a temporary server error) rather than count a permanent failure
    (authentication, mailbox gone).
    """

    mailbox: str
    fetched: int = 0
    recorded: int = 0
    unmatched: int = 0
    deleted: int = 0
    failed: int = 0
    cause: str | None = None
    transient: bool = False
    # Not processed this time, and no failure of the server: `cause` says why for the
    # command's output, `failed` stays 0. With transient=False the mailbox is not to be
    # processed at all (not_processed_reason: inactive, not approved, not enabled...);
    # with transient=True every connection its profile allows was in use (Maximum
    # Concurrent Connections) for as long as the pass could wait: try again soon, and
    # do not count it towards Disable Mailbox After Failures.
    skipped: str | None = None

    @property
    def pass_failed(self) -> bool:
        """The pass itself failed (as opposed to some of its messages, or being skipped)."""
        return self.cause is not None and self.skipped is None

    def as_json(self) -> dict:
        return {
            "mailbox": self.mailbox,
            "fetched": self.fetched,
            "recorded": self.recorded,
            "unmatched": self.unmatched,
            "deleted": self.deleted,
            "failed": self.failed,
            "cause": self.cause,
        }

"""What the mailbox list shows: a saved view, a search and a server profile.

The list pages through these filters; "Select all mailboxes that match" sends them (not
the ids) to the bulk edits, which resolve the same set here. One definition, so a bulk
edit can never reach a mailbox the list would not show.
"""

from dataclasses import dataclass

from django.db import connections
from django.db.models import Q, QuerySet
from django.http import QueryDict

from mailboxadmin.views import MAX_SEARCH_LENGTH, MIN_PREFIX_LENGTH, search_filter
from mailboxes.models import ApprovalStatus, Mailbox, TestStatus
from mailboxes.models.search import mailbox_contains
from mailboxes.views.filters import record_id

FAILURE = TestStatus.FAILURE

# The saved views above the list: (label, filter). Each filter has an index that starts
# with its column and continues with the name, so a page of it is an index range scan;
# "failed" is three single-column indexes OR-ed (few rows fail at a time).
SAVED_VIEWS = {
    "active": ("Active Mailboxes", Q(state=Mailbox.State.ACTIVE)),
    "forward": ("Forward Mailboxes", Q(kind=Mailbox.Kind.FORWARD)),
    "pending": ("Pending Approval", Q(approval_status=ApprovalStatus.PENDING)),
    "failed": (
        "Failed Tests",
        Q(incoming_status=FAILURE) | Q(outgoing_status=FAILURE) | Q(act_status=FAILURE),
    ),
    "inactive": ("Inactive Mailboxes", Q(state=Mailbox.State.INACTIVE)),
    "all": ("All Mailboxes", Q()),
}
DEFAULT_VIEW = "active"


@dataclass(frozen=True)
class MailboxListFilters:
    view: str = DEFAULT_VIEW
    q: str = ""
    profile: str = ""

    @classmethod
    def from_params(cls, params: QueryDict) -> "MailboxListFilters":
        """The filters of a request's parameters; anything else they hold is ignored, and
        an unknown view is the default one, as on the list."""
        view = params.get("view", "")
        return cls(
            view=view if view in SAVED_VIEWS else DEFAULT_VIEW,
            q=params.get("q", "").strip(),
            profile=params.get("profile", ""),
        )

    @property
    def searchable(self) -> bool:
        """False for a search no mailbox can match and the database would refuse (a NUL,
        or longer than any stored value); the list answers 400 to it."""
        return "\x00" not in self.q + self.profile + self.view and len(self.q) <= MAX_SEARCH_LENGTH

    @property
    def label(self) -> str:
        return SAVED_VIEWS[self.view][0]

    def as_params(self) -> dict[str, str]:
        """The filters as the list's query string holds them (empty ones left out)."""
        return {name: value for name, value in vars(self).items() if value}

    def apply(self, mailboxes: QuerySet) -> QuerySet:
        mailboxes = mailboxes.filter(SAVED_VIEWS[self.view][1])
        if len(self.q) >= MIN_PREFIX_LENGTH:
            mailboxes = mailboxes.filter(mailbox_contains(self.q, vendor=connections[mailboxes.db].vendor))
        elif self.q:
            mailboxes = mailboxes.filter(search_filter(self.q, ["name", "email"]))
        if self.profile.isascii() and self.profile.isdigit():  # other digits ("²") are ignored
            profile_id = record_id(self.profile)  # None past the 64-bit range: no profile has it
            if profile_id is None:
                return mailboxes.none()
            mailboxes = mailboxes.filter(server_profile_id=profile_id)
        return mailboxes

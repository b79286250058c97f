"""The base of this project's admins: mailboxadmin's ServiceModelAdmin, given the bulk
outcome and the wording of refusals that the mailbox services use."""

from mailboxadmin.admin_tools import ServiceModelAdmin
from mailboxes.services.bulk import BulkOutcome, reasons


class ServiceAdmin(ServiceModelAdmin):
    bulk_outcome = BulkOutcome
    refusal_reasons = staticmethod(reasons)

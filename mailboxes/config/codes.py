"""The codes the command line and the configuration file use (SPEC section 5).

They are the models' own choice values, so mapping a code to a value is the identity;
these tuples name which codes each key accepts, and a test holds them to the SPEC.
"""

from mailboxes.models import ActMethod, ApprovalStatus, IncomingMethod, OutgoingMethod
from mailboxes.models.queues import ConvertIncoming, QueueType
from serverprofiles.models import AuthenticationMethod, ServerType

SERVER_TYPES = tuple(ServerType.values)
AUTH_METHODS = tuple(AuthenticationMethod.values)
INCOMING_METHODS = tuple(IncomingMethod.values)
OUTGOING_METHODS = tuple(OutgoingMethod.values)
ACT_METHODS = tuple(ActMethod.values)
APPROVAL_STATUSES = tuple(ApprovalStatus.values)
QUEUE_TYPES = tuple(QueueType.values)
CONVERT_INCOMING = tuple(ConvertIncoming.values)

"""Mail processing (SPEC section 8): fetch, route and record mail for every mailbox that
Test & Enable enabled for incoming email.

- `eligibility`: which mailboxes are processed at all (approval, M16, enabled, profile).
- `results`: what one pass over one mailbox did (`PassResult`), as `process_mailboxes
  --json` prints it.
- `engine`: one pass over one mailbox — fetch, parse, route, record, then delete.
- `scheduler`: which mailbox is due, the lease that keeps it to one worker, back-off and
  disabling after repeated failures; the background task and Process Now.
"""

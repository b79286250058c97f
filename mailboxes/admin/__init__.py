"""The Django admin for bulk fixes: every model, each save and delete through the services."""

from mailboxes.admin import alerts, emails, mailboxes, organization, people  # noqa: F401  (registers them)

"""Shared pieces of the Django admin: scale (paginator), service-backed saves and
deletes, stale-edit protection and write-only passwords."""

from mailboxadmin.admin_tools.forms import (
    ServiceModelForm,
    VersionedFormMixin,
    WriteOnlyPasswordsMixin,
    clear_password_field,
    key_file_field,
    password_field,
)
from mailboxadmin.admin_tools.options import SelectionGuard, ServiceModelAdmin, delete_selected, outcome_level
from mailboxadmin.admin_tools.pagination import (
    CappedCountPaginator,
    EstimatedCountPaginator,
    table_row_count,
)

__all__ = [
    "CappedCountPaginator",
    "EstimatedCountPaginator",
    "SelectionGuard",
    "ServiceModelAdmin",
    "ServiceModelForm",
    "VersionedFormMixin",
    "WriteOnlyPasswordsMixin",
    "clear_password_field",
    "key_file_field",
    "delete_selected",
    "outcome_level",
    "password_field",
    "table_row_count",
]

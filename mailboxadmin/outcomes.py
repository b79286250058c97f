"""What a bulk change did, and a refusal in words: shared by the services, the admin's
actions and the pages of every app.

- `reasons(error, model)`: a ValidationError as one line, each message after its field's
  label on `model`.
- `BulkOutcome`: how many records changed, stayed unchanged, and which were refused and
  why (`summary()` says it in one message).
"""

from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models

# Form fields that are no model field: the write-only password of a mailbox or profile.
_LABELS = {"password": "Password"}


def reasons(error: ValidationError, model: type[models.Model] | None = None) -> str:
    """A validation error as one readable line, each message after its field's label
    (its verbose name on `model`; the field's name when there is no model)."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for name, messages in error.message_dict.items():
        label = _label(model, name)
        parts.extend(f"{label}: {message}" if label else message for message in messages)
    return " ".join(parts)


def _label(model: type[models.Model] | None, name: str) -> str:
    if name == NON_FIELD_ERRORS:
        return ""
    if name in _LABELS:
        return _LABELS[name]
    if model is None:
        return name
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


@dataclass
class Refusal:
    record: str
    reasons: str


@dataclass
class BulkOutcome:
    """What a bulk change did: how many rows changed, and which were refused and why.
    `model` names the records' fields in the reasons."""

    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    model: type[models.Model] | None = field(default=None, compare=False, repr=False)

    def refuse(self, record: str, error: ValidationError) -> None:
        self.refused.append(Refusal(record, reasons(error, self.model)))

    def add(self, other: "BulkOutcome") -> None:
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused.extend(other.refused)

    def summary(self, verb: str = "updated", *, limit: int = 10) -> str:
        """ "3 updated, 2 refused: alice@…: <field>: <reason>; bob@…: …" """
        text = f"{self.updated} {verb}"
        if self.unchanged:
            text += f", {self.unchanged} unchanged"
        if self.refused:
            listed = "; ".join(f"{r.record}: {r.reasons}" for r in self.refused[:limit])
            more = f"; and {len(self.refused) - limit} more" if len(self.refused) > limit else ""
            text += f", {len(self.refused)} refused: {listed}{more}"
        return text + ("" if text.endswith(".") else ".")

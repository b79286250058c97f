"""Helpers for rule tests: a rule rejects with its message on the right field, saving nothing."""

from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError


def snapshot(obj):
    """The stored values of a row (re-read from the database)."""
    fresh = type(obj).objects.get(pk=obj.pk)
    return {f.name: f.value_from_object(fresh) for f in fresh._meta.concrete_fields}


@contextmanager
def rejected(field: str, message: str = "", *, unchanged=None):
    """Expect a ValidationError with `message` on `field`, and `unchanged` rows as they were."""
    before = [snapshot(obj) for obj in (unchanged or [])]
    with pytest.raises(ValidationError) as info:
        yield info
    errors = info.value.message_dict
    assert field in errors, f"expected an error on {field!r}, got {errors}"
    if message:
        assert any(message in m for m in errors[field]), errors[field]
    assert [snapshot(obj) for obj in (unchanged or [])] == before

"""Turning domain validation failures into client errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from traceability import errors
from traceability.domain.fields import FieldError


@contextlib.contextmanager
def fields() -> Iterator[None]:
    """Re-raise a domain FieldError as a 422 that names the field."""
    try:
        yield
    except FieldError as exc:
        raise errors.InvalidField(f"{exc.field}: {exc.message}", field=exc.field) from None

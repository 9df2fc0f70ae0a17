"""What the producers' forms and filters type as text, read into values: one reading each."""
from __future__ import annotations

from datetime import date

from filmfund.errors import ValidationError


def parse_day(value: str | None, field: str) -> date | None:
    """A day written 2026-11-23 (a date input's value), or None when the field is empty."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{field}: give a date like 2026-11-23.", code="invalid_date") from None

"""Per-patient date shifting (PS3.15 E.3.6, Retain Longitudinal Temporal Information with
Modified Dates): every date of a patient moves by the same whole number of days, derived from
the key and the patient, so intervals survive and no shared state is needed."""

from __future__ import annotations

import datetime as dt
import re

from deid.keys import SecretKey
from deid.profile.model import DateShift

_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")  # YYYYMMDD, or ACR-NEMA YYYY.MM.DD
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?"
                 r"([+-]\d{4})?$")


def patient_offset(key: SecretKey, patient: str, shift: DateShift) -> int:
    """The offset in days, in [min_days, max_days], for one patient."""
    digest = key.digest(b"date", patient.encode("utf-8", "backslashreplace"))
    span = shift.max_days - shift.min_days + 1
    return shift.min_days + int.from_bytes(digest[:8], "big") % span


def shift_da(value: str, days: int) -> str | None:
    """A DA value moved by days, or None if it is not a date."""
    match = _DA.match(value.strip())
    if not match:
        return None
    try:
        date = dt.date(*(int(g) for g in match.groups())) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return date.strftime("%Y%m%d") if date.year >= 1000 else None


def shift_dt(value: str, days: int) -> str | None:
    """A DT value moved by days, keeping its precision, time and offset; None if invalid."""
    match = _DT.match(value.strip())
    if not match:
        return None
    year, month, day, time, zone = match.groups()
    try:
        date = dt.date(int(year), int(month or 1), int(day or 1)) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    if date.year < 1000:
        return None
    text = f"{date.year:04d}" + (f"{date.month:02d}" if month else "") + (
        f"{date.day:02d}" if day else "")
    return text + (time or "") + (zone or "")


def shift_values(vr: str, values: list[str], days: int) -> list[str] | None:
    """Every value of a DA, DT or TM element shifted; None if any value cannot be parsed.
    TM is a time of day, which a whole-day shift leaves as it is."""
    if vr == "TM":
        return values
    shift = shift_da if vr == "DA" else shift_dt
    out = []
    for value in values:
        if not value:
            out.append(value)
            continue
        moved = shift(value, days)
        if moved is None:
            return None
        out.append(moved)
    return out

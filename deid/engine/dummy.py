"""Dummy values (action D): non-empty and valid for the VR, in length and characters."""

from __future__ import annotations

from pydicom.dataset import Dataset

TEXT = "ANONYMIZED"
_DUMMIES: dict[str, object] = {
    "AE": TEXT, "AS": "000D", "CS": TEXT, "DA": "19000101", "DS": "0", "DT": "19000101000000",
    "IS": "0", "LO": TEXT, "LT": TEXT, "PN": TEXT, "SH": TEXT, "ST": TEXT, "TM": "000000",
    "UC": TEXT, "UR": "urn:deid:anonymized", "UT": TEXT,
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0,
    "AT": 0, "OB": b"\x00\x00", "OD": b"\x00" * 8, "OF": b"\x00" * 4, "OL": b"\x00" * 4,
    "OV": b"\x00" * 8, "OW": b"\x00\x00", "UN": b"\x00\x00",
}


# Attributes whose values have a form of their own (PS3.3 C.12.1.1.8: Timezone Offset From UTC
# is &ZZXX); dummied, they say nothing.
_BY_TAG: dict[int, object] = {0x00080201: "+0000"}


def dummy_value(vr: str, tag: int | None = None) -> object:
    """The dummy value of an attribute, by its VR ('US or SS' style VRs take the first)
    unless its values have a form of their own."""
    if tag in _BY_TAG:
        return _BY_TAG[tag]
    vr = vr.split(" or ")[0].split("/")[0]
    if vr == "SQ":
        return [Dataset()]
    return _DUMMIES[vr]


def empty_value(vr: str) -> object:
    """The zero-length value of a VR (action Z)."""
    return [] if vr == "SQ" else None

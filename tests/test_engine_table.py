"""Every concrete row of PS3.15 Table E.1-1, for Basic and for each option: an instance
carrying the attribute comes out with the action the profile prescribes.

Expectations are read from the standard's table (deid/standard/data/table_e1_1.json), not from
the generated profiles, so a wrong profile cannot pass. The instance's SOP class is one the
engine does not know, so compound codes resolve to their last alternative (Table E.1-1a);
resolution by Type is tested in test_engine.py.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
from dicom_factory import KEY, SAMPLE_VALUES, base_dataset, code_item, sequence_of
from pydicom.dataset import Dataset

from deid import standard
from deid.engine import deidentify_dataset
from deid.engine.dates import patient_offset, shift_da
from deid.profile import load_profiles
from deid.standard.generate import OPTION_COLUMNS

UNKNOWN_SOP_CLASS = "1.2.826.0.1.3680043.8.498.999"  # not in any IOD table
REQUIRED = {"SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"}
LAST_ALTERNATIVE = {"Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}
COLUMNS = [("basic", None), *((name, column) for column, name in OPTION_COLUMNS.items())]


def _table_rows() -> list[dict]:
    with resources.files("deid.standard").joinpath("data", "table_e1_1.json").open() as f:
        return json.load(f)["rows"]


def _concrete_rows() -> list[tuple[dict, standard.ElementInfo]]:
    rows = []
    for row in _table_rows():
        if row["tag"] == "private" or "x" in row["tag"]:
            continue  # repeating groups and private attributes have tests of their own
        tag = int(row["tag"], 16)
        if tag >> 16 in (0x0000, 0x0002, 0x0004):
            # Command and directory elements never belong in a stored data set and are always
            # removed; file meta is replaced as a whole (E.1.1). Tested in test_engine.py.
            continue
        info = standard.element_by_tag(tag)
        assert info is not None, row
        rows.append((row, info))
    return rows


def _value_for(vr: str) -> object:
    vr = vr.split("/")[0].split(" or ")[0]
    if vr == "SQ":
        return sequence_of(code_item())
    return SAMPLE_VALUES[vr]


def _expected(row: dict, column: str | None) -> str:
    code = row.get(column, "") if column else ""
    if not code and column == "retain_uids" and row["basic"] == "U":
        return "K"  # E.3.9: all UIDs are retained, where the column is blank too
    code = code or row["basic"]
    return LAST_ALTERNATIVE.get(code, code)


def _check(code: str, column: str | None, info: standard.ElementInfo, before: object,
           ds: Dataset) -> str | None:
    """None when the element came out as `code` prescribes, else what went wrong."""
    vr = info.vr.split("/")[0]
    present = info.tag in ds
    value = ds[info.tag].value if present else None
    if code == "X" or (code == "C" and vr in ("OB", "OW", "UN")):
        # Binary data cannot be read for identifying content, so cleaning removes it.
        return None if not present else "not removed"
    if not present and code == "C" and info.keyword == "TimezoneOffsetFromUTC":
        return None  # whole-day shifts keep times of day, not where they were taken
    if not present:
        return f"removed, expected {code}"
    if code == "K":
        return None if value == before else "changed, expected kept"
    if code == "Z":
        return None if value in (None, "", b"") or (vr == "SQ" and len(value) == 0) else (
            "not empty")
    if code == "D":
        if vr == "SQ":
            return None if len(value) > 0 else "empty sequence"
        if value in (None, "", b""):
            return "empty, expected a dummy"
        if vr == "UI":
            return None if str(value).startswith("2.25.") else "UID not replaced"
        return None if str(value) != str(before) or vr in ("DS", "IS", "US", "SS", "UL", "SL",
                                                           "FL", "FD", "SV", "UV", "AT") else (
            "not replaced")
    if code == "U":
        if vr == "SQ":
            return None if len(value) > 0 else "empty sequence"
        return None if str(value).startswith("2.25.") else "UID not replaced"
    if code == "C":
        if column == "retain_long_modified_dates" and vr in ("DA", "DT"):
            days = patient_offset(KEY, "PID-0001", load_profiles(["basic"]).date_shift)
            return None if str(value)[:8] == shift_da(str(before)[:8], days) else "not shifted"
        return None  # text without identifying tokens, sequences, times: kept or cleaned
    raise AssertionError(code)


@pytest.mark.parametrize(("profile_name", "column"), COLUMNS, ids=[c[0] for c in COLUMNS])
def test_every_row_gets_its_action(profile_name: str, column: str | None):
    profile = load_profiles([profile_name])
    failures = []
    rows = _concrete_rows()
    assert len(rows) > 640
    for row, info in rows:
        ds = base_dataset(UNKNOWN_SOP_CLASS)
        vr = info.vr.split("/")[0].split(" or ")[0]
        before = _value_for(vr)
        if info.keyword not in REQUIRED:
            ds.add_new(info.tag, vr, before)
        else:
            before = ds[info.tag].value
        deidentify_dataset(ds, profile, KEY)
        code = _expected(row, column)
        problem = _check(code, column, info, before, ds)
        if problem:
            failures.append(f"{row['tag']} {info.keyword} {code}: {problem}")
    assert failures == []


def test_group_patterns_and_private_row():
    """(50xx,xxxx) curves, (60xx,3000) overlay data, (60xx,4000) overlay comments, and the
    private row: all removed under Basic; the rest of an overlay goes with its data."""
    ds = base_dataset()
    ds.add_new(0x50000010, "US", 2)  # Number of Points (retired curve module)
    ds.add_new(0x50023000, "OW", b"\x00\x01")
    ds.add_new(0x60003000, "OW", b"\x00\x01")
    ds.add_new(0x60204000, "LT", "Jane Doe")
    ds.add_new(0x60000010, "US", 512)  # Overlay Rows: not in the table, but of the overlay
    ds.add_new(0x00090010, "LO", "ACME 1")
    ds.add_new(0x00091001, "LO", "private")
    deidentify_dataset(ds, load_profiles(["basic"]), KEY)
    assert 0x50000010 not in ds and 0x50023000 not in ds
    assert 0x60003000 not in ds and 0x60204000 not in ds
    assert 0x60000010 not in ds
    assert 0x00090010 not in ds and 0x00091001 not in ds


def _required_at_top() -> list[tuple[str, str, str]]:
    """(keyword, SOP class, Type) of every attribute the table removes (X) that an IOD
    requires at the top level, with a SOP class of that IOD (the IOD tables' own data)."""
    with resources.files("deid.standard").joinpath("data", "iod_types.json").open() as f:
        data = json.load(f)
    classes = {iod: uid for uid, iod in sorted(data["sop_classes"].items(), reverse=True)}
    found = []
    for keyword in data["removed_unless_required"]:
        for iod, types in sorted(data["iods"].items()):
            kind = types.get(keyword, {}).get("")
            if kind in ("1", "2") and iod in classes:
                found.append((keyword, classes[iod], kind))
                break
    return found


@pytest.mark.parametrize(("keyword", "sop_class", "kind"), _required_at_top())
def test_what_the_table_removes_stays_where_the_iod_requires_it(keyword, sop_class, kind):
    """E.1: the de-identifier keeps the IOD whole. Type 2: emptied; Type 1: dummied."""
    info = standard.element_by_keyword(keyword)
    vr = info.vr.split("/")[0]
    ds = base_dataset(sop_class)
    ds.add_new(info.tag, vr, _value_for(vr))
    deidentify_dataset(ds, load_profiles(["basic"]), KEY)
    assert info.tag in ds
    assert bool(ds[info.tag].value) is (kind == "1")

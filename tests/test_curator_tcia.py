"""The TCIA-style example profile: generated from the knowledge base, loadable, lint-clean, and
keeping, hashing, shifting and dropping the private elements the knowledge base names."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from dicom_factory import to_bytes
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage

from deid.curator import tcia
from deid.curator.lint import lint
from deid.engine import Output, deidentify_bytes
from deid.keys import SecretKey
from deid.profile import load_profiles
from deid.profile.loader import ACTION_VRS

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT.parent / "shared" / "reference" / tcia.KB_NAME
KEY = SecretKey(b"tcia-tests-key-0123456789abcdef", "tests")


@pytest.fixture(scope="module")
def profile():
    return load_profiles(["tcia"])


@pytest.fixture(scope="module")
def data():
    return json.loads(tcia.DATA_FILE.read_text(encoding="utf-8"))


def test_committed_profile_equals_the_generator_output(data):
    assert tcia.render(out=None) == (ROOT / "profiles" / "tcia.yaml").read_text(encoding="utf-8")


@pytest.mark.skipif(not KB.is_file(), reason="../shared/reference is not beside the checkout")
def test_committed_data_equals_the_extraction(tmp_path):
    tcia.extract(KB, tmp_path / "tcia_private.json")
    assert (tmp_path / "tcia_private.json").read_bytes() == tcia.DATA_FILE.read_bytes()


def test_every_rule_is_possible_for_the_vr_the_knowledge_base_gives(data):
    rules, fail_closed, _ = tcia.private_rules(data, tcia.safe_private())
    for rule in rules:
        allowed = ACTION_VRS.get(rule.action)
        if allowed is not None:
            assert set(rule.vrs) & allowed, rule
        if rule.action == "U":  # a UID, read with its VR or without (UN)
            assert "UI" in rule.vrs and set(rule.vrs) <= {"UI", "UN"}, rule
    # Every fail-closed choice is explained in the rule's comment and counted in the header.
    text = (ROOT / "profiles" / "tcia.yaml").read_text(encoding="utf-8")
    for reason, count in fail_closed.items():
        assert re.search(rf"^#\s+{count}  {re.escape(reason)}$", text, re.M), reason
    assert all(" -> X: " in r.comment for r in rules if r.action == "X" and r.reason)


def test_dispositions_map_to_actions():
    assert tcia._action("k", ["OB"]) == ("K", None)
    assert tcia._action("k", ["UI"]) == ("U", None)  # an original UID is never kept
    assert tcia._action("k", ["UI", "UN"]) == ("U", None)
    assert tcia._action("d", ["LO"]) == ("X", None)
    assert tcia._action("h", ["UI"]) == ("U", None)
    assert tcia._action("h", ["LO", "UI"]) == ("hash", None)
    assert tcia._action("h", ["OB", "UN"])[0] == "X"
    assert tcia._action("o", ["DT", "LO"]) == ("shift", None)
    assert tcia._action("o", ["LO"])[0] == "X"
    assert tcia._action("oi", ["SL"])[0] == "X"
    assert tcia._action("na", ["LO"])[0] == "X"
    assert tcia._action("", ["LO"])[0] == "X"


def test_signatures_parse_with_or_without_quotes():
    assert tcia.parse_signature('(0019,"GEMS_ACQU_01",23)') == [
        {"creator": "GEMS_ACQU_01", "group": "0019", "offset": "23"}]
    assert tcia.parse_signature('(0008,1115)[<0>](2001,Philips Imaging DD 001",c1)') == [
        {"tag": "00081115"}, {"creator": "Philips Imaging DD 001", "group": "2001",
                              "offset": "C1"}]
    assert tcia.parse_signature('(0019,HOLOGIC, Inc.",05)')[0]["creator"] == "HOLOGIC, Inc."
    assert tcia.parse_signature("(0019,1002") is None


def test_the_profile_loads_and_is_lint_clean(profile, data):
    rules, _, _ = tcia.private_rules(data, tcia.safe_private())
    assert profile.names[-1] == "tcia"
    assert {r.profile for r in profile.all_rules()} >= {"basic", "tcia", "retain-safe-private"}
    # Every generated rule survives composition: none shadows another.
    assert sum(1 for candidates in profile.by_private.values() for r in candidates
               if r.profile == "tcia") == len(rules)
    assert lint(["tcia"]) == []  # options it composes disagree, and it decides


def _private(ds: Dataset, group: int, block: int, creator: str,
             elements: dict[int, tuple[str, object]]) -> None:
    ds.add_new((group << 16) | block, "LO", creator)
    for offset, (vr, value) in elements.items():
        ds.add_new((group << 16) | (block << 8) | offset, vr, value)


def _deidentify(ds: Dataset, profile) -> Dataset:
    result = deidentify_bytes(to_bytes(ds), profile, KEY)
    assert isinstance(result, Output), result
    return dcmread(io.BytesIO(result.data))


def test_private_elements_are_kept_hashed_shifted_and_dropped_as_the_kb_says(profile):
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.30.1.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.30"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.30.1"
    ds.Modality = "CT"
    ds.PatientID = "PID-7"
    _private(ds, 0x0019, 0x10, "GEMS_ACQU_01", {
        0x02: ("SL", 912),  # k
        0x0C: ("DS", "1.5"),  # d
    })
    _private(ds, 0x0019, 0x11, "MMCPrivate", {0x1A: ("UI", "1.2.3.4.5")})  # h on UI -> U
    _private(ds, 0x0009, 0x10, "GEMS_GENIE_1", {0x2B: ("LO", "TRIGGER-123")})  # h -> hash
    _private(ds, 0x0009, 0x11, "GEMS_PETD_01", {0x05: ("DT", "20200315101112")})  # o -> shift
    _private(ds, 0x0009, 0x12, "FDMS 1.0", {0x05: ("OB", b"\x01\x02")})  # h on OB -> X
    _private(ds, 0x0009, 0x13, "ELEKTA GAMMAPLAN", {0x20: ("UN", b"\x01\x02")})  # k, nested only
    _private(ds, 0x2001, 0x10, "Philips Imaging DD 001", {0x04: ("CS", "AP")})  # safe, KB split
    _private(ds, 0x0011, 0x10, "ACME PRIVATE", {0x01: ("LO", "Doe^Jane")})  # not in the KB
    item = Dataset()
    item.DoseReferenceNumber = 1
    _private(item, 0x0009, 0x10, "ELEKTA GAMMAPLAN", {0x20: ("UN", b"\x01\x02")})
    ds.DoseReferenceSequence = Sequence([item])
    out = _deidentify(ds, profile)

    assert out[0x00191002].value == 912
    assert 0x0019100C not in out
    assert out[0x0019111A].value.startswith("2.25.") and out[0x0019111A].value != "1.2.3.4.5"
    assert re.fullmatch(r"[0-9A-F]{16}", out[0x0009102B].value)
    shifted = out[0x00091105].value
    assert shifted.endswith("101112") and shifted != "20200315101112"
    days = (dt.date(2020, 3, 15) - dt.datetime.strptime(shifted[:8], "%Y%m%d").date()).days
    assert 1 <= days <= 3650
    assert 0x00091205 not in out  # a hash the VR cannot take: removed (fail closed)
    assert 0x00091320 not in out  # ELEKTA's element is kept only within DoseReferenceSequence
    assert out.DoseReferenceSequence[0][0x00091020].value == b"\x01\x02"
    assert out[0x20011004].value == "AP"  # PS3.15 lists it as safe; the KB's rows disagree
    assert 0x00111001 not in out and 0x00110010 not in out  # unknown creator: removed
    assert out[0x00090010].value == "GEMS_GENIE_1"  # creators of kept blocks stay
    assert 0x00090012 not in out  # creator of an emptied block goes


def test_device_dates_are_shifted_where_the_options_disagree(profile):
    rule = profile.rules_for_tag(0x00181200)[0]  # DateOfLastCalibration
    assert (rule.action, rule.profile) == ("shift", "tcia")

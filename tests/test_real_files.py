"""Every file of pydicom's test data and of ../shared/corpus comes out either as a valid
de-identified file or as a clean rejection; none crashes, none leaks into messages."""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path

import dciodvfy
import pytest
from dicom_factory import KEY
from pydicom import dcmread
from pydicom.data import get_testdata_files

from deid.engine import Output, Rejection, deidentify_bytes
from deid.profile import load_profiles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PYDICOM_FILES = sorted({Path(f) for f in get_testdata_files("*") if Path(f).is_file()})
CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.suffix not in (".csv", ".md")) if (
    CORPUS.is_dir()) else []
PROFILES = {
    "basic": ["basic"],
    "research": ["basic", "retain-long-modified-dates", "retain-patient-characteristics",
                 "retain-device-identity", "retain-safe-private", "clean-descriptors",
                 "clean-structured-content"],
}
REASONS = {"unreadable", "not_dicom", "burned_in_annotation", "missing_attribute",
           "invalid_uid", "dicomdir", "unsupported_transfer_syntax", "too_large", "write_failed"}


def _identifying_values() -> set[str]:
    """The corpus inventory's patient names and IDs, to look for in messages."""
    if not CORPUS.is_dir():
        return set()
    with (CORPUS / "INVENTORY.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    values = {row[k] for row in rows for k in ("patient_name", "patient_id") if row[k]}
    return {v for v in values if len(v) >= 4}


def _check_all(files: list[Path], profile_names: list[str]) -> dict[str, int]:
    profile = load_profiles(profile_names)
    secrets = _identifying_values()
    outcomes: dict[str, int] = {}
    for path in files:
        data = path.read_bytes()
        result = deidentify_bytes(data, profile, KEY)
        if isinstance(result, Rejection):
            assert result.reason in REASONS, (path.name, result)
            assert not any(s in result.message for s in secrets), path.name
            outcomes[result.reason] = outcomes.get(result.reason, 0) + 1
            continue
        assert isinstance(result, Output)
        out = dcmread(io.BytesIO(result.data))
        original = dcmread(io.BytesIO(data), force=True)
        assert out.PatientIdentityRemoved == "YES"
        assert out.SOPInstanceUID == result.sop_instance_uid
        if "PixelData" in original:
            pixels = original.PixelData or b""
            # An odd-length value (invalid DICOM) gains the one padding byte PS3.5 7.1.1 needs.
            padding = b"\x00" if len(pixels) % 2 else b""
            assert (out.PixelData or b"") == pixels + padding, path.name
        outcomes["written"] = outcomes.get("written", 0) + 1
    return outcomes


@pytest.mark.parametrize("profile", PROFILES)
def test_pydicom_test_files(profile: str):
    outcomes = _check_all(PYDICOM_FILES, PROFILES[profile])
    assert outcomes["written"] > 30


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not beside the checkout")
@pytest.mark.parametrize("profile", PROFILES)
def test_shared_corpus(profile: str):
    outcomes = _check_all(CORPUS_FILES, PROFILES[profile])
    assert outcomes["written"] > 30
    assert outcomes.get("dicomdir") == 1


@cache
def _input_errors(path: Path) -> frozenset[str]:
    return frozenset(dciodvfy.errors(path))


@dciodvfy.needs_dciodvfy
@pytest.mark.parametrize("profile", ["basic", "tcia", "basic+retain-uids"])
def test_outputs_add_no_dciodvfy_error(profile: str, tmp_path):
    """Every output of pydicom's test files and of ../shared/corpus (where beside the
    checkout) has no dciodvfy error its input did not have (issue 13)."""
    loaded = load_profiles(profile.split("+"))
    new, written = {}, 0
    for path in PYDICOM_FILES + CORPUS_FILES:
        result = deidentify_bytes(path.read_bytes(), loaded, KEY)
        if not isinstance(result, Output):
            continue
        out = tmp_path / f"{path.name}.dcm"
        out.write_bytes(result.data)
        written += 1
        added = dciodvfy.errors(out) - _input_errors(path)
        if added:
            new[path.name] = added
    assert written > 30
    assert new == {}

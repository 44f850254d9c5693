"""deid verify: conformance, leaks and consistency of de-identified files, pairing of folders,
the command's exit codes, and that every output the engine writes from real files passes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from dicom_factory import KEY, SOP_UID, STUDY_UID, base_dataset, code_item, sequence_of, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset

from deid.cli import main
from deid.engine import Output, deidentify_bytes
from deid.engine.uids import replace_uid
from deid.profile import load_profiles
from deid.verify import Consistency, verify_pair
from deid.verify.pair import digest

# Basic and a rule that keeps Manufacturer, where the tests plant values.
KEEPS_MANUFACTURER = Path(__file__).resolve().parent / "fixtures" / "verify" / \
    "basic-keeps-manufacturer.yaml"
BASIC = load_profiles([str(KEEPS_MANUFACTURER)])
SECRET = "verify-tests-0123456789abcdef"


def _original() -> Dataset:
    ds = base_dataset()
    ds.PatientBirthDate = "19610407"
    ds.OtherPatientIDs = "MRN-77341"
    ds.InstitutionName = "Saint Elsewhere Clinic"
    ds.Manufacturer = "ACME"  # kept by a rule
    ds.RedPaletteColorLookupTableData = b"\x00\x01"  # kept binary (no rule)
    ds.ReferencedImageSequence = sequence_of(Dataset())
    ds.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.9"
    ds.PixelData = b"Doe^Jane" * 2  # kept byte-identical by design: never a leak
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.SamplesPerPixel = 16, 1
    return ds


def _deidentified(original: bytes, profile=BASIC) -> Dataset:
    result = deidentify_bytes(original, profile, KEY)
    assert isinstance(result, Output), result
    return dcmread(io.BytesIO(result.data))


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _names(original: bytes, tampered: Dataset, profile=BASIC) -> set[str]:
    return {f.name for f in verify_pair(original, _encode(tampered), profile).findings}


ORIGINAL = to_bytes(_original())


def test_an_engine_output_passes():
    result = verify_pair(ORIGINAL, _encode(_deidentified(ORIGINAL)), BASIC)
    assert result.findings == []
    assert ("uid", digest(SOP_UID), digest(replace_uid(KEY, SOP_UID))) in result.mappings
    assert ("patient_id", digest("PID-0001"), digest("")) in result.mappings


def test_conformance_findings_name_tags_and_checks_never_values():
    out = _deidentified(ORIGINAL)
    out.OtherPatientIDs = "XYZ"  # X
    out.PatientName = "Roe^Richard"  # Z
    out.StudyInstanceUID = STUDY_UID  # U, left unchanged
    out.SeriesInstanceUID = "1.2.03"  # U, invalid
    out.add_new(0x00091010, "LO", "SOMECREATOR")
    out.add_new(0x00091001, "LO", "no creator")  # private, not kept by basic
    del out.PatientIdentityRemoved
    findings = verify_pair(ORIGINAL, _encode(out), BASIC).findings
    assert {f.name for f in findings} >= {
        "conformance/removed", "conformance/emptied", "conformance/uid_replaced",
        "conformance/uid_valid", "conformance/private", "conformance/markers"}
    where = {f.where for f in findings}
    assert {"OtherPatientIDs (0010,1000)", "SeriesInstanceUID (0020,000E)"} <= where
    text = json.dumps([f.as_json() for f in findings])
    assert "PID-0001" not in text and STUDY_UID not in text and "Doe" not in text


def test_compound_codes_accept_each_alternative():
    out = _deidentified(ORIGINAL)
    assert "InstitutionName" not in out  # X/Z/D resolved to X for a CT
    for value in ("", "ANONYMIZED"):  # Z, D
        out.InstitutionName = value
        assert _names(ORIGINAL, out) == set()
    out.InstitutionName = "Saint Elsewhere Clinic"
    assert _names(ORIGINAL, out) == {"conformance/dummied", "leak/text"}


@pytest.mark.parametrize("planted, check", [
    ("Jane", "leak/text"),  # a name component
    ("jane doe", "leak/text"),  # the full name, another order, another case
    ("seen 07/04/1961", "leak/text"),  # a date in another spelling
    ("ref MRN-77341", "leak/text"),  # a removed ID
])
def test_a_planted_value_is_found_in_kept_text(planted, check):
    out = _deidentified(ORIGINAL)
    out.Manufacturer = planted
    findings = verify_pair(ORIGINAL, _encode(out), BASIC).findings
    assert [f.name for f in findings] == [check]
    assert findings[0].where == "Manufacturer (0008,0070)"
    assert planted not in findings[0].detail


def test_a_planted_value_is_found_in_raw_bytes_outside_pixel_data():
    out = _deidentified(ORIGINAL)
    out.RedPaletteColorLookupTableData = b"xxDoe^Jane  "
    findings = verify_pair(ORIGINAL, _encode(out), BASIC).findings
    assert {f.name for f in findings} == {"leak/bytes"}


def test_raw_bytes_are_searched_in_the_instance_character_set():
    ds = _original()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    data = to_bytes(ds)
    out = _deidentified(data)
    out.RedPaletteColorLookupTableData = "x Jürgen ".encode()
    assert _names(data, out) == {"leak/bytes"}


def test_values_the_profile_keeps_and_short_tokens_are_not_leaks():
    ds = _original()
    ds.OperatorsName = "ACME"  # removed, but the same text is kept in Manufacturer
    ds.PerformingPhysicianName = "Li"  # too short to search for
    data = to_bytes(ds)
    out = _deidentified(data)
    out.Manufacturer = "Li"
    assert _names(data, out) == set()


def test_templates_lookups_and_shifts_are_checked(tmp_path):
    table = tmp_path / "ids.csv"
    table.write_text("original,code\nPID-0001,SUBJ-01\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"name: rules\nextends: ['{KEEPS_MANUFACTURER}']\nrules:\n"
        f"- {{attribute: PatientID, action: lookup, file: {table.name}}}\n"
        "- {attribute: PatientName, action: replace, template: 'Subject {PatientID}'}\n"
        "- {attribute: PatientBirthDate, action: shift}\n")
    profile = load_profiles([str(rules)])
    out = _deidentified(ORIGINAL, profile)
    assert _names(ORIGINAL, out, profile) == set()
    out.PatientID = "SUBJ-99"
    out.PatientBirthDate = "19610407"
    assert _names(ORIGINAL, out, profile) == {"conformance/lookup", "conformance/shifted",
                                              "leak/text"}


def test_consistency_over_a_set():
    consistency = Consistency()
    consistency.add("a.dcm", [("uid", "u1", "n1"), ("patient_id", "p1", "q1")])
    other = Consistency()
    other.add("b.dcm", [("uid", "u1", "n2"), ("uid", "u2", "n3"), ("patient_id", "p1", "q1")])
    other.add("c.dcm", [("uid", "u3", "n3")])
    findings = consistency.merge(other).findings()
    assert [(f.check, f.where) for f in findings] == [("uid", "a.dcm, b.dcm"),
                                                      ("uid_collision", "b.dcm, c.dcm")]


# --- the command ------------------------------------------------------------------------------

def _folders(tmp_path: Path) -> tuple[Path, Path]:
    """Three originals (one the engine rejects) de-identified with `deid file`."""
    originals, outputs = tmp_path / "in", tmp_path / "out"
    originals.mkdir()
    outputs.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (originals / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
        assert main(["file", str(originals / name), str(outputs), "-p", "basic"]) == 0
    (originals / "notes.txt").write_text("not DICOM")
    return originals, outputs


def test_folders_are_paired_by_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    originals, outputs = _folders(tmp_path)
    report = tmp_path / "report.json"
    assert main(["verify", "--original", str(originals), "--deidentified", str(outputs),
                 "-p", "basic", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["counts"] | {} == {"instances": 3, "passed": 2, "failed": 0, "quarantined": 0,
                                   "rejected": 1, "findings": 0}
    assert "result: clean" in capsys.readouterr().out


def test_a_bomb_among_the_originals_is_not_inflated(tmp_path, monkeypatch):
    """An original the engine refuses as too_large is counted as rejected, without being
    inflated to find its SOP Instance UID (a few MiB that inflate to 4 GiB)."""
    from hostile_inputs import by_kind

    monkeypatch.setenv("DEID_SECRET", SECRET)
    originals, outputs = _folders(tmp_path)
    (originals / "bomb.dcm").write_bytes(by_kind("deflate_bomb").data)
    report = tmp_path / "report.json"
    tracemalloc.start()
    try:
        code = main(["verify", "--original", str(originals), "--deidentified", str(outputs),
                     "-p", "basic", "--json", str(report)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0 and peak < 256 << 20
    assert json.loads(report.read_text())["counts"]["rejected"] == 2


def test_unpaired_files_are_findings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    originals, outputs = _folders(tmp_path)
    (originals / "CT_small.dcm").unlink()  # its output has no original now
    (originals / "extra.dcm").write_bytes(ORIGINAL)  # no output
    capsys.readouterr()
    assert main(["verify", "--original", str(originals), "--deidentified", str(outputs),
                 "-p", "basic", "--json", "-"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["by_check"] == {"pairing/missing_output": 1, "pairing/unpaired_output": 1}


def test_two_files_and_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    source, out = tmp_path / "o.dcm", tmp_path / "d.dcm"
    source.write_bytes(ORIGINAL)
    leaky = _deidentified(ORIGINAL)
    leaky.Manufacturer = "Jane Doe"
    out.write_bytes(_encode(leaky))
    argv = ["verify", "--original", str(source), "--deidentified", str(out), "-p",
            str(KEEPS_MANUFACTURER)]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert "leak/text" in printed and "Jane" not in printed and "Doe" not in printed
    out.write_bytes(_encode(_deidentified(ORIGINAL)))
    assert main(argv) == 0
    assert main([*argv[:-1], str(tmp_path / "missing.yaml")]) == 2
    assert main(["verify", "--original", str(tmp_path / "none"), "--deidentified", str(out),
                 "-p", "basic"]) == 2
    assert main([*argv, "--secret-file", str(tmp_path / "no-key")]) == 2


def test_the_command_does_not_import_beam(tmp_path):
    source, out = tmp_path / "o.dcm", tmp_path / "d.dcm"
    source.write_bytes(ORIGINAL)
    out.write_bytes(_encode(_deidentified(ORIGINAL)))
    code = ("import sys; from deid.cli import main; "
            f"code = main(['verify', '--original', {str(source)!r}, '--deidentified', "
            f"{str(out)!r}, '-p', {str(KEEPS_MANUFACTURER)!r}]); "
            "assert code == 0, code; assert 'apache_beam' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_sr_content_sequence_is_dummied_and_verified():
    ds = base_dataset("1.2.840.10008.5.1.4.1.1.88.11")  # Basic Text SR: ContentSequence is D
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "Jane Doe was seen"
    item.ConceptNameCodeSequence = sequence_of(code_item("121071", "DCM", "Finding"))
    ds.ContentSequence = sequence_of(item)
    data = to_bytes(ds)
    out = _deidentified(data)
    assert _names(data, out) == set()
    out.ContentSequence[0].TextValue = "Jane Doe was seen"
    assert _names(data, out) == {"conformance/dummied", "leak/text"}


# --- every output the engine writes from real files passes -----------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REAL_FILES = sorted({Path(f) for f in get_testdata_files("*") if Path(f).is_file()}) + (
    sorted(p for p in CORPUS.glob("*") if p.suffix not in (".csv", ".md"))
    if CORPUS.is_dir() else [])


def _verified_outputs(profile):
    """Every real file the engine writes under ``profile``, with its verification, which
    must find nothing."""
    for path in REAL_FILES:
        data = path.read_bytes()
        result = deidentify_bytes(data, profile, KEY)
        if isinstance(result, Output):
            checked = verify_pair(data, result.data, profile)
            assert checked.findings == [], path.name
            yield path, result, checked


@pytest.mark.parametrize("profile_name", ["basic", "tcia"])
def test_every_engine_output_from_real_files_passes(profile_name):
    profile = load_profiles([profile_name])
    consistency = Consistency()
    written = 0
    for path, _, checked in _verified_outputs(profile):
        written += 1
        consistency.add(path.name, checked.mappings)
    # Copies of one instance in several transfer syntaxes agree, across the whole set.
    assert consistency.findings() == []
    assert written > (90 if CORPUS.is_dir() else 50)


def test_outputs_whose_pixels_were_cleaned_pass(tmp_path):
    """E.3.1: the Burned In Annotation NO and Lossy Image Compression the engine writes under
    burned_in: clean are expected, not elements the output added."""
    (tmp_path / "site.yaml").write_text(
        "name: site\nextends: [clean-pixel-data]\npixels:\n  ultrasound_regions: keep-inside\n"
        "  rules:\n  - name: every-image\n    match: {Modality: {pattern: '.'}}\n"
        "    blank: [[0, 0, 2, 2]]\n")
    profile = load_profiles([str(tmp_path / "site.yaml")])
    cleaned = sum(dcmread(io.BytesIO(result.data)).get("BurnedInAnnotation") == "NO"
                  for _, result, _ in _verified_outputs(profile))
    assert cleaned > 40


def test_a_profile_that_does_not_load_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nrules:\n- {attribute: NoSuchKeyword, action: X}\n")
    ct = get_testdata_file("CT_small.dcm")
    assert main(["verify", "--original", ct, "--deidentified", ct,
                 "-p", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "profile error" in err and "bad.yaml:3" in err

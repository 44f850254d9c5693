"""`deid explain`: every element of one instance, with the action, the rule (file:line) that
decided it and the result; values masked unless asked; rejections with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dicom_factory import to_bytes
from pixel_instances import PROFILE as PIXEL_PROFILE
from pixel_instances import image as pixel_image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, MRImageStorage

from deid.cli import main
from deid.curator.elements import walk

ROOT = Path(__file__).resolve().parents[1]
CT = get_testdata_file("CT_small.dcm")
RTPLAN = get_testdata_file("rtplan.dcm")
SECRET = "explain-tests-secret-0123456789"


def _line_of(profile: str, needle: str) -> int:
    lines = (ROOT / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def _dataset(modality: str = "CT", sop_class: str = CTImageStorage) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.10.1.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.10"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.10.1"
    ds.Modality = modality
    ds.PatientID = "PID-0042"
    ds.PatientName = "Doe^Jane"
    return ds


def _write(ds: Dataset, path: Path) -> str:
    path.write_bytes(to_bytes(ds))
    return str(path)


def _explain_json(capsys, *args: str, expect: int = 0) -> dict:
    assert main(["explain", *args, "--json"]) == expect
    return json.loads(capsys.readouterr().out)


def _by_path(report: dict) -> dict[str, dict]:
    return {e["path"]: e for e in report["elements"]}


@pytest.fixture(autouse=True)
def _no_secret(monkeypatch):
    monkeypatch.delenv("DEID_SECRET", raising=False)


def test_every_element_explained_with_its_rule_and_masked_values(capsys):
    report = _explain_json(capsys, CT, "-p", "basic", "-p", "retain-safe-private")
    assert report["written"] is True and report["rejection"] is None
    assert report["throwaway_key"] is True and report["values_shown"] is False
    rows = _by_path(report)
    original = dcmread(CT)
    assert {n.path for n in walk(original)} <= set(rows)  # every element, once
    assert len(report["elements"]) == len(rows)
    name = rows["PatientName"]
    assert (name["action"], name["result"], name["before"], name["after"]) == (
        "Z", "emptied", "<21 chars>", "<empty>")
    assert name["rule"]["source"]["file"] == "profiles/basic.yaml"
    assert name["rule"]["source"]["line"] == _line_of("basic", "{attribute: PatientName,")
    safe = rows["(0019,1023)"]
    assert safe["name"] == "GEMS_ACQU_01 (0019,xx23)"
    assert (safe["action"], safe["result"]) == ("K", "kept")
    assert safe["rule"]["source"]["file"] == "profiles/retain-safe-private.yaml"
    dropped = rows["(0009,1001)"]
    assert (dropped["action"], dropped["result"], dropped["rule"]) == ("X", "removed", None)
    assert "no rule" in dropped["note"]
    assert rows["(0009,0010)"]["result"] == "removed"  # its block is empty
    date = rows["InstanceCreationDate"]
    assert date["action"] == "X" and "the attribute's Type" in date["note"]
    added = rows["PatientIdentityRemoved"]
    assert (added["action"], added["result"]) == ("add", "added")
    text = json.dumps(report)
    for value in ("CompressedSamples", "1CT1", "JFK IMAGING", "CT01_OC0", "20040119"):
        assert value not in text


def test_show_values_shows_them(capsys):
    rows = _by_path(_explain_json(capsys, CT, "-p", "basic", "--show-values"))
    assert rows["PatientName"]["before"] == "'CompressedSamples^CT1'"
    assert rows["Modality"]["after"] == "'CT'"


def test_the_key_is_stated_and_taken_from_the_environment_or_a_file(capsys, monkeypatch,
                                                                     tmp_path):
    assert main(["explain", CT, "-p", "basic"]) == 0
    out = capsys.readouterr().out
    assert "key: a throwaway random key (no --secret-file and no $DEID_SECRET" in out
    assert "values: masked" in out
    monkeypatch.setenv("DEID_SECRET", SECRET)
    report = _explain_json(capsys, CT, "-p", "basic", "--show-values")
    assert (report["key"], report["throwaway_key"]) == ("$DEID_SECRET", False)
    # The same key gives what `deid file` writes.
    assert main(["file", CT, str(tmp_path / "out.dcm"), "-p", "basic"]) == 0
    capsys.readouterr()
    written = dcmread(tmp_path / "out.dcm")
    assert _by_path(report)["SOPInstanceUID"]["after"] == repr(written.SOPInstanceUID)
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    monkeypatch.delenv("DEID_SECRET")
    report = _explain_json(capsys, CT, "-p", "basic", "--secret-file", str(key_file))
    assert report["key"] == f"file {key_file}"


def test_text_table(capsys):
    assert main(["explain", CT, "-p", "basic", "--changes-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"explain {CT} with basic"
    assert lines[3].startswith("result: written (")
    header = next(line for line in lines if line.startswith("TAG"))
    assert header.split() == ["TAG", "ELEMENT", "VR", "ACTION", "RESULT", "DECIDED", "BY",
                              "VALUE"]
    name = next(line for line in lines if "PatientName" in line)
    assert name.split()[:5] == ["(0010,0010)", "PatientName", "PN", "Z", "emptied"]
    assert name.index("emptied") == header.index("RESULT")
    assert "<21 chars> -> <empty>" in name
    column = header.index("RESULT")
    results = {line[column:].split()[0] for line in lines[lines.index(header) + 1:]}
    assert "kept" not in results and {"emptied", "removed", "changed"} <= results


def test_nested_elements_have_item_indices_and_sequences_their_own_rule(capsys):
    rows = _by_path(_explain_json(capsys, RTPLAN, "-p", "basic"))
    deep = ("BeamSequence[0]>ControlPointSequence[1]>ReferencedDoseReferenceSequence[0]>"
            "ReferencedDoseReferenceNumber")
    assert rows[deep]["result"] == "kept"
    ref = rows["ReferencedRTPlanSequence[0]>ReferencedSOPInstanceUID"]
    assert (ref["action"], ref["result"]) == ("U", "changed")
    # A sequence the engine goes into is reported with its own decision, not its last child's.
    setup = rows["PatientSetupSequence"]
    assert (setup["action"], setup["rule"], setup["result"]) == ("K", None, "kept")
    assert rows["PatientSetupSequence[0]>SetupTechniqueDescription"]["action"] == "X"


def test_a_rejection_is_explained_with_its_reason(capsys, tmp_path):
    source = _write(_dataset("US", "1.2.840.10008.5.1.4.1.1.6.1"), tmp_path / "us.dcm")
    assert main(["explain", source, "-p", "basic"]) == 1
    out = capsys.readouterr().out
    assert "result: REJECTED, burned_in_annotation: BurnedInAnnotation (0028,0301) is absent" in out
    assert "Doe" not in out
    report = _explain_json(capsys, source, "-p", "basic", expect=1)
    assert report["written"] is False
    assert report["rejection"]["reason"] == "burned_in_annotation"


def test_a_rejection_part_way_shows_where_it_stopped(capsys, tmp_path):
    table = tmp_path / "ids.csv"
    table.write_text("original,code\nSOMEONE-ELSE,SUBJ-1\n")
    profile = tmp_path / "lookup.yaml"
    profile.write_text("name: lookup\nextends: [basic]\nrules:\n"
                       "- {attribute: PatientID, action: lookup, file: ids.csv}\n")
    source = _write(_dataset(), tmp_path / "ct.dcm")
    report = _explain_json(capsys, source, "-p", str(profile), expect=1)
    assert report["rejection"]["reason"] == "lookup_missing"
    rows = _by_path(report)
    assert rows["PatientID"]["result"] == "not written"
    assert "PID-0042" not in json.dumps(report)


def test_when_rules_apply_only_where_their_condition_holds(capsys, tmp_path):
    profile = tmp_path / "ages.yaml"
    profile.write_text("name: ages\nextends: [basic]\nrules:\n"
                       "- {attribute: PatientAge, when: {Modality: [CT, PT]}, action: K}\n")
    for modality, sop_class, action, where in (
            ("CT", CTImageStorage, "K", (str(profile), 4)),
            ("MR", MRImageStorage, "X",
             ("profiles/basic.yaml", _line_of("basic", "{attribute: PatientAge,")))):
        ds = _dataset(modality, sop_class)
        ds.PatientAge = "042Y"
        source = _write(ds, tmp_path / f"{modality}.dcm")
        age = _by_path(_explain_json(capsys, source, "-p", str(profile)))["PatientAge"]
        assert age["action"] == action, modality
        assert (age["rule"]["source"]["file"], age["rule"]["source"]["line"]) == where
        if modality == "CT":
            assert age["rule"]["conditions"] == {"when": {"Modality": ["CT", "PT"]}}


def test_within_rules_apply_only_inside_their_sequence(capsys, tmp_path):
    profile = tmp_path / "within.yaml"
    profile.write_text("name: within\nextends: [basic]\nrules:\n"
                       "- {attribute: ReferencedSOPInstanceUID, within: DerivationImageSequence,"
                       " action: K}\n")
    ds = _dataset()
    for keyword in ("DerivationImageSequence", "ReferencedRTPlanSequence"):
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.10.1.7"
        setattr(ds, keyword, Sequence([item]))
    rows = _by_path(_explain_json(capsys, _write(ds, tmp_path / "ct.dcm"), "-p", str(profile)))
    inside = rows["DerivationImageSequence[0]>ReferencedSOPInstanceUID"]
    assert (inside["action"], inside["result"]) == ("K", "kept")
    assert inside["rule"]["conditions"] == {"within": "DerivationImageSequence"}
    outside = rows["ReferencedRTPlanSequence[0]>ReferencedSOPInstanceUID"]
    assert (outside["action"], outside["result"]) == ("U", "changed")


def test_allow_lists_keep_listed_values_and_remove_the_rest(capsys, tmp_path):
    profile = tmp_path / "allow.yaml"
    profile.write_text("name: allow\nextends: [basic, clean-descriptors]\nrules:\n"
                       "- {attribute: SeriesDescription, action: clean, allow: ['AX T1'],"
                       " allow_patterns: ['^(T2|FLAIR)']}\n")
    for value, result in (("AX T1", "kept"), ("T2 FLAIR", "kept"), ("FLAIR", "kept"),
                          ("Dr Smith's series", "removed"), ("ax t1", "removed")):
        ds = _dataset()
        ds.SeriesDescription = value
        source = _write(ds, tmp_path / "ct.dcm")
        row = _by_path(_explain_json(capsys, source, "-p", str(profile)))["SeriesDescription"]
        assert row["result"] == result, value
        assert row["rule"]["source"]["line"] == 4
        if result == "removed":
            assert row["note"] == "value not in the allow-list"


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main(["explain", str(tmp_path / "missing.dcm"), "-p", "basic"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["explain", CT, "-p", str(tmp_path / "missing.yaml")]) == 2
    capsys.readouterr()


def test_a_private_sequence_opened_under_e3_10(capsys, tmp_path):
    ds = _dataset()
    inner = Dataset()
    inner.PatientName = "Doe^John"
    inner.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x23, "DS", "5.0")
    inner.private_block(0x0029, "ACME 1.0", create=True).add_new(0x01, "LO", "secret")
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x50, "SQ", Sequence([inner]))
    report = _explain_json(capsys, _write(ds, tmp_path / "ct.dcm"), "-p", "retain-safe-private")
    rows = _by_path(report)
    sequence = rows["(0029,1050)"]
    assert (sequence["action"], sequence["result"]) == ("K", "kept")
    assert "PS3.15 E.3.10" in sequence["note"]
    safe = rows["(0029,1050)[0]>(0019,1023)"]
    assert safe["name"] == "GEMS_ACQU_01 (0019,xx23)"
    assert (safe["action"], safe["result"]) == ("K", "kept")
    assert rows["(0029,1050)[0]>(0029,1001)"]["result"] == "removed"
    assert rows["(0029,1050)[0]>PatientName"]["result"] == "emptied"
    assert main(["explain", str(tmp_path / "ct.dcm"), "-p", "retain-safe-private"]) == 0
    assert "(0029,1050)[0]>GEMS_ACQU_01 (0019,xx23)" in capsys.readouterr().out


def test_without_pairing_the_trace_is_shown_as_recorded(capsys, monkeypatch):
    import deid.curator.explain as explain_module

    monkeypatch.setattr(explain_module, "_pair", lambda original, trace: None)
    assert main(["explain", CT, "-p", "basic"]) == 0
    out = capsys.readouterr().out
    assert "note: elements could not be matched to their items" in out
    name = next(line for line in out.splitlines() if " PatientName " in line)
    assert "<21 chars> -> <empty>" in name and "CompressedSamples" not in out


def test_explain_shows_the_pixel_rule_that_matches_and_those_tried_before(capsys, tmp_path):
    (tmp_path / "site.yaml").write_text(PIXEL_PROFILE.format(ultrasound="'off'", ocr="'off'"))
    source = _write(pixel_image(model="Other"), tmp_path / "us.dcm")
    site = str(tmp_path / "site.yaml")
    assert main(["explain", source, "-p", site, "--changes-only"]) == 0
    out = capsys.readouterr().out
    assert f"pixels: pixel rule 'acme-any' ({site}:10) blanks [0, 40, 64, 8]\n" in out
    assert f"  pixel rule 'acme-top-bar' ({site}:7): ManufacturerModelName does not match\n" \
           f"  pixel rule 'acme-any' ({site}:10): matches\n" in out
    assert "second-frame" not in out  # after the first match, no rule is tried
    row = next(line for line in out.splitlines() if line.startswith("(7FE0,0010)"))
    assert "changed" in row and "pixels cleaned (PS3.15 E.3.1" in row
    report = _explain_json(capsys, source, "-p", site)
    assert report["pixels"]["rules_tried"] == [
        {"name": "acme-top-bar", "source": f"{site}:7", "matches": False,
         "first_mismatch": "ManufacturerModelName"},
        {"name": "acme-any", "source": f"{site}:10", "matches": True, "first_mismatch": None}]
    assert _by_path(report)["BurnedInAnnotation"]["result"] == "added"


def test_explain_says_why_no_pixel_rule_covers_an_instance(capsys, tmp_path):
    (tmp_path / "site.yaml").write_text(PIXEL_PROFILE.format(ultrasound="keep-inside",
                                                             ocr="'off'"))
    source = _write(pixel_image(manufacturer="NOBODY"), tmp_path / "us.dcm")
    report = _explain_json(capsys, source, "-p", str(tmp_path / "site.yaml"), expect=1)
    assert report["pixels"]["plan"].startswith("not written: burned_in_annotation: ")
    assert report["pixels"]["plan"].endswith(
        "no pixel rule matches and it has no Sequence of Ultrasound Regions (0018,6011) to keep")
    assert [r["first_mismatch"] for r in report["pixels"]["rules_tried"]] == ["Manufacturer"] * 3
    assert "NOBODY" not in json.dumps(report)
    source = _write(pixel_image("CT", manufacturer="NOBODY"), tmp_path / "ct.dcm")
    report = _explain_json(capsys, source, "-p", str(tmp_path / "site.yaml"))
    assert report["pixels"]["plan"] == ("kept byte for byte: no sign of burned-in text and no "
                                        "pixel rule matches")

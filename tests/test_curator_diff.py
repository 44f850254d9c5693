"""`deid diff`: what changed between two instances, element by element, at every depth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dicom_factory import to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage

from deid.cli import main

CT = get_testdata_file("CT_small.dcm")


def _write(ds: Dataset, path: Path) -> str:
    path.write_bytes(to_bytes(ds))
    return str(path)


def _referencing(*uids: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.20.1.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.20"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.20.1"
    ds.PatientName = "Doe^Jane"
    items = []
    for uid in uids:
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = uid
        items.append(item)
    ds.ReferencedImageSequence = Sequence(items)
    return ds


@pytest.fixture
def deidentified(tmp_path, monkeypatch, capsys) -> str:
    monkeypatch.setenv("DEID_SECRET", "diff-tests-secret-0123456789")
    out = tmp_path / "out.dcm"
    assert main(["file", CT, str(out), "-p", "basic"]) == 0
    capsys.readouterr()
    return str(out)


def test_a_deidentified_file_against_its_original(deidentified, capsys):
    assert main(["diff", CT, deidentified, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    changes = {c["path"]: c for c in report["changes"]}
    assert changes["PatientAge"]["change"] == "removed"
    assert changes["PatientAge"]["before"] == "<4 chars>" and changes["PatientAge"]["after"] is None
    assert changes["PatientName"]["change"] == "changed"
    assert changes["PatientName"]["after"] == "<empty>"
    assert changes["SOPInstanceUID"]["change"] == "changed"
    assert changes["MediaStorageSOPInstanceUID"]["change"] == "changed"  # file meta
    assert changes["PatientIdentityRemoved"]["change"] == "added"
    assert changes["OtherPatientIDsSequence"]["change"] == "removed"
    assert changes["(0009,1001)"]["name"] == "GEMS_IDEN_01 (0009,xx01)"
    assert "Modality" not in changes  # unchanged elements only with --all
    assert report["counts"]["added"] >= 4 and report["counts"]["same"] == 0
    text = json.dumps(report)
    assert "CompressedSamples" not in text and "1CT1" not in text


def test_text_table_and_show_values(deidentified, capsys):
    assert main(["diff", CT, deidentified, "--show-values", "--no-meta"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d+ removed, \d+ changed, \d+ added", lines[1])
    header = next(line for line in lines if line.startswith("CHANGE"))
    assert header.split() == ["CHANGE", "TAG", "ELEMENT", "VR", "BEFORE", "AFTER"]
    name = next(line for line in lines if " PatientName " in line)
    assert name.split()[:4] == ["changed", "(0010,0010)", "PatientName", "PN"]
    assert "'CompressedSamples^CT1'" in name and name.rstrip().endswith("<empty>")
    assert not any("MediaStorageSOPInstanceUID" in line for line in lines)  # --no-meta


def test_identical_files_exit_0(capsys):
    assert main(["diff", CT, CT]) == 0
    assert "0 removed, 0 changed, 0 added" in capsys.readouterr().out
    assert main(["diff", CT, CT, "--all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["same"] == len(report["changes"]) > 100


def test_nested_changes_name_their_item(tmp_path, capsys):
    before = _write(_referencing("1.2.3.1", "1.2.3.2", "1.2.3.3"), tmp_path / "a.dcm")
    after_ds = _referencing("1.2.3.1", "1.2.3.9")
    after = _write(after_ds, tmp_path / "b.dcm")
    assert main(["diff", before, after, "--json", "--no-meta", "--show-values"]) == 1
    changes = {c["path"]: c for c in json.loads(capsys.readouterr().out)["changes"]}
    assert set(changes) == {"ReferencedImageSequence",
                            "ReferencedImageSequence[1]>ReferencedSOPInstanceUID",
                            "ReferencedImageSequence[2]"}
    assert changes["ReferencedImageSequence"]["before"] == "<3 items>"
    uid = changes["ReferencedImageSequence[1]>ReferencedSOPInstanceUID"]
    assert (uid["change"], uid["before"], uid["after"]) == ("changed", "'1.2.3.2'", "'1.2.3.9'")
    assert changes["ReferencedImageSequence[2]"]["change"] == "removed"


def test_unreadable_input_exits_2(tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    assert main(["diff", CT, str(junk)]) == 2
    assert "not_dicom" in capsys.readouterr().err
    assert main(["diff", CT, str(tmp_path / "missing.dcm")]) == 2


def test_removed_elements_are_absent_from_the_output(deidentified, capsys):
    assert main(["diff", CT, deidentified, "--json", "--no-meta"]) == 1
    removed = {c["path"] for c in json.loads(capsys.readouterr().out)["changes"]
               if c["change"] == "removed"}
    out = dcmread(deidentified)
    assert all(path.split(">")[0].split("[")[0] not in out for path in removed
               if not path.startswith("("))

"""deid run --verify: each instance checked before it is committed, the run checked for
consistency, the report beside the manifest, exit 1 on any finding."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from dicom_factory import KEY
from pydicom import dcmread
from pydicom.data import get_testdata_file

import deid.beam.verify as beam_verify
from deid.beam import DeidentifyInstances, KeySource
from deid.beam.verify import VERIFICATION_FAILED, Verified, VerifyCombineFn
from deid.cli import main as cli
from deid.engine import Output, deidentify_bytes
from deid.profile import load_profiles
from deid.verify import Finding, PairResult
from pipelines.deidentify import main

SECRET = "verify-pipeline-0123456789abcdef"
FILES = ("CT_small.dcm", "MR_small.dcm", "rtdose_rle.dcm")


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in FILES:
        shutil.copy(get_testdata_file(name), folder / name)
    return folder


def test_a_verified_run_writes_its_report_and_deid_verify_agrees(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs, out = _inputs(tmp_path), tmp_path / "out"
    (inputs / "notes.txt").write_text("not DICOM")  # quarantined: needs no output
    assert main(["--input", str(inputs), "--output", str(out), "--profile", "basic",
                 "--verify", "--allow_quarantine"]) == 0
    report = json.loads((out / "verify_report.json").read_text())
    assert report["ok"] and report["instances_verified"] == len(FILES)
    assert "verify_report.json" in capsys.readouterr().out
    assert cli(["verify", "--original", str(inputs), "--deidentified", str(out),
                "-p", "basic", "--json", "-"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert (counts["passed"], counts["quarantined"], counts["findings"]) == (len(FILES), 1, 0)


def test_a_failed_verification_is_quarantined_and_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)

    def finds_a_leak(original, output, profile):
        return PairResult([Finding("leak", "text", "Manufacturer (0008,0070)", "planted")])

    monkeypatch.setattr(beam_verify, "verify_pair", finds_a_leak)
    inputs, out = _inputs(tmp_path), tmp_path / "out"
    assert main(["--input", str(inputs), "--output", str(out), "--profile", "basic",
                 "--verify", "--allow_quarantine"]) == 1
    assert not list(out.rglob("*.dcm"))  # fail closed: nothing written
    records = [json.loads(line) for line in
               (tmp_path / "out-quarantine" / "quarantine.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in records} == {VERIFICATION_FAILED}
    assert all("leak/text at Manufacturer (0008,0070)" in r["message"] for r in records)
    report = json.loads((out / "verify_report.json").read_text())
    assert report["instances_failed"] == len(FILES)
    assert report["by_check"] == {"leak/text": len(FILES)}


@pytest.mark.parametrize("planted", [False, True])
def test_streamed_instances_are_verified_without_their_pixel_data(tmp_path, monkeypatch, planted):
    """Above the streaming threshold the staged output is verified; a failure
    deletes the staged file, so nothing is written."""
    monkeypatch.setenv("DEID_SECRET", SECRET)
    if planted:
        def finds_a_leak(original, output, profile):
            assert b"DICM" in output[:132]  # the staged file, not nothing
            return PairResult([Finding("leak", "text", "Manufacturer (0008,0070)", "planted")])

        monkeypatch.setattr(beam_verify, "verify_pair", finds_a_leak)
    inputs, out = _inputs(tmp_path), tmp_path / "out"
    code = main(["--input", str(inputs), "--output", str(out), "--profile", "basic",
                 "--verify", "--stream_threshold_mb", "0", "--allow_quarantine"])
    report = json.loads((out / "verify_report.json").read_text())
    written = list(out.rglob("*.dcm"))
    if planted:
        assert code == 1 and not written and report["instances_failed"] == len(FILES)
        assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".json"
                    and not p.name.endswith(".parquet")
                    and "manifest" not in p.name]  # no staged file left behind
    else:
        assert code == 0 and report["ok"] and len(written) == len(FILES)


def _leaky(data, profile, key):
    """The engine, then the original patient name planted in a kept element."""
    result = deidentify_bytes(data, profile, key)
    dataset = dcmread(io.BytesIO(result.data))
    dataset.Manufacturer = str(dcmread(io.BytesIO(data)).PatientName)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return Output(**{**result.__dict__, "data": buffer.getvalue()})


def test_verification_catches_a_leaky_engine(tmp_path):
    source = tmp_path / "ct.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), source)
    files = [fileio.ReadableFile(FileMetadata(str(source), source.stat().st_size))]
    key = KeySource("throwaway", key=KEY)
    family = str(dcmread(source).PatientName).split("^")[0]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        result = (p | beam.Create(files)
                  | DeidentifyInstances(load_profiles(["basic"]), key, deidentify=_leaky,
                                        verify=True))
        assert_that(result.instances, equal_to([]), label="nothing written")
        assert_that(result.quarantine | beam.Map(lambda q: (q.reason, family in q.message)),
                    equal_to([(VERIFICATION_FAILED, False)]), label="quarantined")
        assert_that(result.verified | beam.Map(lambda v: {name for name, _ in v.findings}),
                    equal_to([{"leak/text"}]), label="verified")


def test_the_report_combine_checks_consistency_without_values():
    combine = VerifyCombineFn(("basic",))
    parts = [combine.create_accumulator() for _ in range(2)]
    combine.add_input(parts[0], Verified("s/e/a.dcm", (), (("uid", "d1", "n1"),)))
    combine.add_input(parts[1], Verified("s/e/b.dcm", (), (("uid", "d1", "n2"),)))
    combine.add_input(parts[1], Verified(None, (("leak/text", "PatientName (0010,0010)"),)))
    report = combine.extract_output(combine.merge_accumulators(parts))
    assert report["instances_verified"] == 3 and report["instances_failed"] == 1
    assert report["by_check"] == {"leak/text": 1}
    assert [f["where"] for f in report["set_findings"]] == ["s/e/a.dcm, s/e/b.dcm"]
    assert not report["ok"]

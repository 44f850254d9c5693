"""The Beam pipeline on local folders: transforms under TestPipeline, then whole runs over
pydicom's test files, over ../shared/corpus when present, and in separate worker processes."""

from __future__ import annotations

import base64
import bz2
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import zlib
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pydicom
import pytest
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import written_sample_files
from dicom_factory import to_bytes
from pixel_instances import PROFILE as PIXEL_PROFILE
from pixel_instances import image, us_regions

from deid.beam import (
    DeidentifyInstances,
    KeySource,
    ReadInstances,
    Streaming,
    WriteInstances,
    paths,
)
from deid.beam.paths import STAGING
from deid.beam.records import DUPLICATE, INTERNAL_ERROR, OUTPUT_ERROR, Quarantined
from deid.beam.write import CommitFn
from deid.engine import Output, deidentify_bytes
from deid.keys import SecretKey
from deid.profile import load_profiles
from pipelines import deidentify
from pipelines.deidentify import main, sample_files

SECRET = "pipeline-tests-0123456789abcdef"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SAMPLE = sample_files()
# Reasons the engine gives (deid.engine) and those the pipeline adds (deid.beam.records).
REASONS = {"unreadable", "not_dicom", "burned_in_annotation", "missing_attribute",
           "invalid_uid", "dicomdir", "lookup_missing", "profile_error", "write_failed",
           "unsupported_transfer_syntax", "too_large", "internal_error", "output_error",
           "duplicate_instance"}
# Reasons of the Clean Pixel Data Option: the pixel library's (deid.pixels) and the engine's.
PIXEL_REASONS = {"decode_failed", "decoder_unavailable", "float_pixel_data",
                 "icon_image_encapsulated", "invalid_attribute", "invalid_palette",
                 "invalid_region", "malformed_ultrasound_regions", "no_pixel_data", "ocr_failed",
                 "ocr_unavailable", "pixel_data_encoding", "pixel_data_length",
                 "region_outside_image", "unsupported_bit_depth", "unsupported_overlay",
                 "unsupported_photometric_interpretation", "text_remains", "pixels_unavailable"}
REASONS |= PIXEL_REASONS
HASHED_PATIENT_ID = """\
name: hashed-patient-id
extends: [basic]
rules:
- {attribute: PatientID, action: hash}
"""


def sample(name: str) -> str:
    return next(p for p in SAMPLE if Path(p).name == name)


def run(argv: list[str]) -> deidentify.Report:
    return deidentify.run(deidentify.plan(argv))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_pairs(path: Path) -> list[tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["id_old", "id_new"]
    return [tuple(row) for row in rows[1:]]


def dicom_outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}


def sorted_metadata(folder: Path) -> list[dict]:
    """metadata.parquet's rows, in a stable order."""
    rows = pq.read_table(folder / "metadata.parquet").to_pylist()
    return sorted(rows, key=lambda row: row["SOPInstanceUID"])


def original_uids(inputs: list[str]) -> set[str]:
    found = set()
    for path in inputs:
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
                if keyword in ds:
                    found.add(str(ds[keyword].value))
        except Exception:
            pass
    return found


def check_run(report: deidentify.Report, inputs: list[str], output: Path,
              quarantine: Path) -> tuple[list[dict], list[dict]]:
    """What every run must satisfy; returns the manifest rows and the quarantine records."""
    assert report.consistent, report.counts
    assert report.read == len(set(inputs))
    assert report.written + report.quarantined == report.read

    files = dicom_outputs(output)
    manifest = read_jsonl(output / "manifest.jsonl")
    records = read_jsonl(quarantine / "quarantine.jsonl")
    assert len(files) == len(manifest) == report.written
    assert len(records) == report.quarantined
    assert not (output / STAGING).exists()

    parquet = pq.read_table(output / "manifest.parquet").to_pylist()
    key = lambda row: row["sop_instance_uid"]  # noqa: E731
    assert sorted(parquet, key=key) == sorted(manifest, key=key)

    old = original_uids(inputs)
    for row in manifest:
        assert not Path(row["output_path"]).is_absolute()  # a release can move
        path = output / row["output_path"]
        data = path.read_bytes()
        assert row["size"] == len(data)
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        ds = pydicom.dcmread(io.BytesIO(data))
        study, series, name = path.relative_to(output).parts
        assert (study, series, name) == (ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                         ds.SOPInstanceUID + ".dcm")
        assert row["sop_instance_uid"] == ds.SOPInstanceUID
        assert row["study_instance_uid"] == ds.StudyInstanceUID
        assert row["series_instance_uid"] == ds.SeriesInstanceUID
        assert row["sop_class_uid"] == ds.SOPClassUID
        assert row["modality"] == str(ds.get("Modality", ""))
        assert row["transfer_syntax_uid"] == ds.file_meta.TransferSyntaxUID
        assert {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}.isdisjoint(old)

    assert len({r["input"] for r in records}) == len(records)
    assert {r["input"] for r in records} <= set(inputs)
    for record in records:
        assert record["reason"] in REASONS, record
        assert record["message"]
    assert Counter(r["reason"] for r in records) == report.by_reason
    return manifest, records


# --- transforms under TestPipeline ---------------------------------------------------------

def test_read_instances_reads_each_file_once_across_overlapping_patterns(tmp_path):
    for name in ("a.dcm", "b.dcm", "sub/c.dcm"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    patterns = [str(tmp_path / "**"), str(tmp_path / "*.dcm"), str(tmp_path / "sub" / "c.dcm"),
                str(tmp_path / "nothing-*")]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        paths = p | ReadInstances(patterns) | beam.Map(lambda f: f.metadata.path)
        assert_that(paths, equal_to([str(tmp_path / n) for n in ("a.dcm", "b.dcm",
                                                                  "sub/c.dcm")]))


def _explode(data, profile, key):
    raise ValueError("Doe^Jane 1970-01-01")  # exception text may quote values


def test_deidentify_turns_exceptions_and_read_failures_into_quarantine(tmp_path):
    present = tmp_path / "present.dcm"
    present.write_bytes(b"DICM")
    files = [fileio.ReadableFile(FileMetadata(str(present), 4)),
             fileio.ReadableFile(FileMetadata(str(tmp_path / "gone.dcm"), 4))]
    key = KeySource("throwaway", key=SecretKey.throwaway())
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(files)
               | DeidentifyInstances(load_profiles(["basic"]), key, deidentify=_explode))
        assert_that(out.instances, equal_to([]), label="nothing written")
        assert_that(out.quarantine, equal_to([
            Quarantined(str(present), INTERNAL_ERROR, "ValueError"),
            Quarantined(str(tmp_path / "gone.dcm"), "unreadable",
                        "cannot read the file (FileNotFoundError)")]), label="quarantined")


def _readable(path: Path) -> fileio.ReadableFile:
    return fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size))


def test_above_the_threshold_inputs_stream_into_their_staging_files(tmp_path):
    """No data travels: the Output points at its staging file, which holds the in-memory
    bytes; a rejected input leaves no staging file; a failing sink is an output_error."""
    profile, key = load_profiles(["basic"]), SecretKey(SECRET.encode(), "tests")
    good, cut = tmp_path / "good.dcm", tmp_path / "cut.dcm"
    data = Path(sample("MR_small_RLE.dcm")).read_bytes()
    good.write_bytes(data)
    cut.write_bytes(data[:-100])
    staging = tmp_path / "staging"
    streaming = Streaming(str(staging), threshold=1000)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create([_readable(good), _readable(cut)])
               | DeidentifyInstances(profile, KeySource("throwaway", key=key),
                                     streaming=streaming))
        assert_that(out.instances | beam.Map(lambda e: (e[0], e[1].data, e[1].size)),
                    equal_to([(str(good), None, len(deidentify_bytes(data, profile, key).data))]),
                    label="streamed")
        assert_that(out.quarantine | beam.Map(lambda r: (r.input, r.reason)),
                    equal_to([(str(cut), "unreadable")]), label="rejected")
    expected = deidentify_bytes(data, profile, key)
    assert [f.read_bytes() for f in staging.iterdir()] == [expected.data]
    assert Path(paths.staging_file(str(staging), str(good))).exists()

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the staging folder should be")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create([_readable(good)])
               | DeidentifyInstances(profile, KeySource("throwaway", key=key),
                                     streaming=Streaming(str(blocked), threshold=0)))
        assert_that(out.quarantine | beam.Map(lambda r: r.reason), equal_to([OUTPUT_ERROR]))


def test_write_instances_keeps_one_of_several_inputs_with_the_same_instance(tmp_path):
    profile, key = load_profiles(["basic"]), SecretKey(SECRET.encode(), "tests")
    data = Path(sample("MR_small.dcm")).read_bytes()
    first = deidentify_bytes(data, profile, key)
    other = deidentify_bytes(Path(sample("MR_small_RLE.dcm")).read_bytes(), profile, key)
    assert isinstance(first, Output) and isinstance(other, Output)
    assert first.sop_instance_uid == other.sop_instance_uid and first.data != other.data
    output = tmp_path / "out"
    elements = [("/in/b.dcm", other), ("/in/a.dcm", first), ("/in/c.dcm", first)]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        result = p | beam.Create(elements) | WriteInstances(str(output), "run1")
        assert_that(result["written"] | beam.Map(lambda s: s.input), equal_to(["/in/a.dcm"]),
                    label="written")
        assert_that(result["quarantine"] | beam.Map(lambda r: (r.input, r.reason)),
                    equal_to([("/in/b.dcm", DUPLICATE), ("/in/c.dcm", DUPLICATE)]),
                    label="duplicates")
    files = dicom_outputs(output)
    assert list(files.values()) == [first.data]
    assert not (output / STAGING).exists()


def _refuse(staged):
    raise OSError("disk full")


def test_a_failed_rename_is_quarantined_and_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.setattr(CommitFn, "_commit", staticmethod(_refuse))
    inputs = [sample("CT_small.dcm"), sample("rtplan.dcm")]
    report = run(["--input", inputs[0], "--input", inputs[1], "--output",
                  str(tmp_path / "out"), "--profile", "basic"])
    assert report.consistent and report.read == 2 and report.written == 0
    assert report.by_reason == {"output_error": 2}
    records = read_jsonl(tmp_path / "out-quarantine" / "quarantine.jsonl")
    assert {r["message"] for r in records} == {"cannot move the output into place (OSError)"}
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")
                  if p.is_file() and p.parent.name != "runs") == \
        ["collection.json", "manifest.jsonl", "manifest.parquet",
         "metadata.parquet"]  # nothing half-written,
    assert pq.read_table(tmp_path / "out" / "manifest.parquet").num_rows == 0  # no staging
    assert pq.read_table(tmp_path / "out" / "metadata.parquet").num_rows == 0


def _unpacked(payload: bytes) -> bytes:
    """A pickled DoFn as Beam stores it (base64 of bz2 or zlib) back to the raw pickle, where
    a bytes value such as a key appears as it is."""
    packed = base64.b64decode(payload)
    try:
        return bz2.decompress(packed)
    except OSError:
        return zlib.decompress(packed)


def _pardo_payloads(pipeline: beam.Pipeline) -> list[bytes]:
    """Every DoFn of the pipeline graph, as raw pickles."""
    proto = pipeline.to_runner_api()
    found = []
    for transform in proto.components.transforms.values():
        if transform.spec.urn == "beam:transform:pardo:v1":
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.do_fn.payload:
                found.append(_unpacked(payload.do_fn.payload))
    return found


@pytest.mark.parametrize("source", ["env", "file", "throwaway"])
def test_the_key_stays_out_of_the_job_graph(source, tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    monkeypatch.delenv("DEID_SECRET", raising=False)
    argv = ["--input", sample("CT_small.dcm"), "--output", str(tmp_path / "out"),
            "--profile", "basic"]
    if source == "env":
        monkeypatch.setenv("DEID_SECRET", SECRET)
    elif source == "file":
        argv += ["--secret_file", str(secret_file)]
    else:
        argv += ["--throwaway_key"]
    checked = deidentify.plan(argv)
    pipeline = beam.Pipeline(runner="FnApiRunner", options=checked.options)
    deidentify.build(pipeline, checked)
    graph = b"".join(_pardo_payloads(pipeline))
    assert b"KeySource" in graph
    if source == "throwaway":  # the control: the search finds a key that is there
        assert checked.key_source.resolve()._key in graph
    else:
        assert SECRET.encode() not in graph
        assert SECRET.encode() not in pipeline.to_runner_api().SerializeToString()
        assert SECRET not in str(checked.options.get_all_options())


def test_lookup_tables_enter_the_job_graph_sealed(tmp_path, monkeypatch):
    """A lookup rule's table travels with the profile; its original identifiers must not."""
    monkeypatch.setenv("DEID_SECRET", SECRET)
    original = "ORIGINAL-PATIENT-4711"
    (tmp_path / "ids.csv").write_text(f"original,code\n{original},SUBJ-001\n")
    (tmp_path / "p.yaml").write_text("name: trial\nextends: [basic]\nrules:\n"
                                     "  - {attribute: PatientID, action: lookup, file: ids.csv,"
                                     " missing: X}\n")
    checked = deidentify.plan(["--input", sample("CT_small.dcm"), "--output",
                               str(tmp_path / "out"), "--profile", str(tmp_path / "p.yaml")])
    pipeline = beam.Pipeline(runner="FnApiRunner", options=checked.options)
    deidentify.build(pipeline, checked)
    graph = b"".join(_pardo_payloads(pipeline))
    assert b"SUBJ-001" in graph  # the control: the table is there
    assert original.encode() not in graph
    assert original.encode() not in pipeline.to_runner_api().SerializeToString()


# --- whole runs over pydicom's test files ---------------------------------------------------

@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    """The sample run twice with the same key, with linkage and copies of the originals, and
    a third time streaming every input (`streamed`)."""
    root = tmp_path_factory.mktemp("sample")
    profile = root / "hashed-patient-id.yaml"
    profile.write_text(HASHED_PATIENT_ID)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEID_SECRET", SECRET)
        reports = []
        for name, extra in (("first", []), ("second", []),
                            ("streamed", ["--stream_threshold_mb", "0"])):
            reports.append(run([
                "--sample", "--output", str(root / name), "--profile", str(profile),
                "--linkage_output", str(root / f"{name}-linkage"), "--quarantine_copy",
                *extra]))
    return root, reports


def test_sample_run_invariant_outputs_and_quarantine(sample_runs):
    root, (report, *_) = sample_runs
    manifest, records = check_run(report, SAMPLE, root / "first", root / "first-quarantine")
    assert report.written > 50 and report.quarantined > 10
    assert report.counts["bytes_read"] == sum(os.path.getsize(p) for p in SAMPLE)
    assert report.counts["bytes_written"] == sum(row["size"] for row in manifest)
    assert all(row["profiles"] == ["basic", "hashed-patient-id"] for row in manifest)
    reasons = {r["reason"] for r in records}
    assert {"not_dicom", DUPLICATE} <= reasons
    for record in records:  # --quarantine_copy: each original beside its record
        copy = Path(record["copy"])
        assert copy.is_relative_to(root / "first-quarantine" / "originals")
        assert copy.read_bytes() == Path(record["input"]).read_bytes()


def test_sample_rerun_with_the_same_key_is_byte_identical(sample_runs):
    root, (first, second, _) = sample_runs
    assert first.counts == second.counts
    assert dicom_outputs(root / "first") == dicom_outputs(root / "second")
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert sorted(read_pairs(root / "first-linkage" / name)) == \
            sorted(read_pairs(root / "second-linkage" / name))


def test_a_streamed_sample_run_writes_the_same_files(sample_runs):
    """Every input streamed from input to staging file: the same outputs, manifest,
    quarantine and linkage as the in-memory run."""
    root, (first, _, streamed) = sample_runs
    assert streamed.counts == first.counts
    assert dicom_outputs(root / "streamed") == dicom_outputs(root / "first")

    def rows(name: str) -> list[dict]:
        return sorted(read_jsonl(root / name / "manifest.jsonl"),
                      key=lambda r: r["sop_instance_uid"])

    assert rows("streamed") == rows("first")
    # metadata.parquet: read back from the staged file of a streamed instance, from its bytes
    # in memory otherwise
    assert sorted_metadata(root / "streamed") == sorted_metadata(root / "first")
    quarantined = {name: sorted((r["input"], r["reason"], r["message"]) for r in read_jsonl(
        root / f"{name}-quarantine" / "quarantine.jsonl")) for name in ("first", "streamed")}
    assert quarantined["streamed"] == quarantined["first"]
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert sorted(read_pairs(root / "streamed-linkage" / name)) == \
            sorted(read_pairs(root / "first-linkage" / name))


def test_sample_linkage_matches_the_outputs(sample_runs):
    root, (report, *_) = sample_runs
    manifest = read_jsonl(root / "first" / "manifest.jsonl")
    uids = read_pairs(root / "first-linkage" / "uid_mapping.csv")
    patient_ids = read_pairs(root / "first-linkage" / "patid_mapping.csv")
    assert len(uids) == len(set(uids)) and len(patient_ids) == len(set(patient_ids))
    new_of = dict(uids)
    assert len(new_of) == len(uids)  # each original UID has one replacement
    old = original_uids(SAMPLE)
    old_of = {new: old_uid for old_uid, new in uids}
    for row in manifest:  # every written UID comes from an input's UID via the crosswalk
        for field in ("sop_instance_uid", "study_instance_uid", "series_instance_uid"):
            assert old_of[row[field]] in old
    outputs_ids = set()
    for row in manifest:
        ds = pydicom.dcmread(root / "first" / row["output_path"], stop_before_pixels=True)
        if ds.get("PatientID"):
            outputs_ids.add(str(ds.PatientID))
    assert outputs_ids and {new for _, new in patient_ids} == outputs_ids
    inputs_ids = set()
    for path in SAMPLE:
        with contextlib.suppress(Exception):
            inputs_ids.add(str(pydicom.dcmread(path, force=True).PatientID))
    assert {old_id for old_id, _ in patient_ids} <= inputs_ids
    assert not list((root / "first").glob("*.csv"))  # crosswalks only in the linkage folder


def test_logs_and_sidecars_hold_no_identifying_values(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.setattr("deid.beam.metrics.PROGRESS_SECONDS", 0.0)  # a progress line per file
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = set()
    for path in SAMPLE:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        for keyword in ("PatientName", "PatientID", "InstitutionName", "ReferringPhysicianName"):
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 4 and any(c.isalpha() for c in value):
                names.add(value)
                shutil.copy(path, inputs / Path(path).name)
    assert len(names) > 5
    caplog.set_level(logging.DEBUG, logger="deid")
    code = main(["--input", str(inputs), "--output", str(tmp_path / "out"),
                 "--profile", "basic", "--allow_quarantine"])
    assert code == 0
    captured = capsys.readouterr()
    assert "deid run: done" in captured.out
    texts = [captured.out, captured.err, caplog.text,
             (tmp_path / "out" / "manifest.jsonl").read_text(),
             (tmp_path / "out-quarantine" / "quarantine.jsonl").read_text()]
    assert "progress" in caplog.text
    for name in names:
        for text in texts:
            assert name not in text


# --- exit codes and usage errors -----------------------------------------------------------

def test_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    clean = written_sample_files(3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in clean:
        shutil.copy(path, inputs / Path(path).name)
    base = ["--input", str(inputs), "--profile", "basic"]
    assert main([*base, "--output", str(tmp_path / "ok")]) == 0
    assert "exit 0: every input was written" in capsys.readouterr().out
    # rerun into the same folder: same files, no leftovers
    before = dicom_outputs(tmp_path / "ok")
    assert main([*base, "--output", str(tmp_path / "ok")]) == 0
    assert dicom_outputs(tmp_path / "ok") == before and len(before) == 3
    assert sorted(p.name for p in (tmp_path / "ok").iterdir() if p.is_file()) == \
        ["collection.json", "manifest.jsonl", "manifest.parquet", "metadata.parquet"]

    (inputs / "notes.txt").write_text("not an image")
    truncated = Path(clean[0]).read_bytes()[:200]
    (inputs / "truncated.dcm").write_bytes(truncated)
    assert main([*base, "--output", str(tmp_path / "q")]) == 1
    out = capsys.readouterr().out
    assert "quarantined" in out and "not_dicom" in out and "exit 1" in out
    assert main([*base, "--output", str(tmp_path / "q2"), "--allow_quarantine"]) == 0
    records = read_jsonl(tmp_path / "q2-quarantine" / "quarantine.jsonl")
    reasons = {Path(r["input"]).name: r["reason"] for r in records}
    assert reasons.keys() == {"notes.txt", "truncated.dcm"}
    assert reasons["notes.txt"] == "not_dicom"

    assert main(["--input", str(tmp_path / "empty-*"), "--output", str(tmp_path / "none"),
                 "--profile", "basic"]) == 2  # nothing matched: nothing to do
    assert "no file found under" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--output", "OUT", "--profile", "basic"], "nothing to read"),
    (["--input", "IN", "--profile", "basic"], "--output FOLDER is required"),
    (["--input", "IN", "--output", "OUT"], "no profile"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--stream_threshold_mb", "-1"],
     "--stream_threshold_mb must be 0 or more"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--secret-fil", "k"],
     "unrecognized arguments: --secret-fil (did you mean --secret-file?)"),
    (["--input", "IN", "--output", "OUT", "--profile", "basci", "--profile", "nope.yaml"],
     "no such profile"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--quarantine_output",
      "OUT/q"], "--quarantine_output is inside --output"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--linkage_output",
      "OUT/link"], "--linkage_output is inside --output"),
    (["--input", "IN", "--output", "IN/out", "--profile", "basic"], "would also read"),
    (["--input", "IN/missing", "--output", "OUT", "--profile", "basic"],
     "no such file or folder"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic"], "no secret key"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--secret_file", "IN/none"],
     "cannot read the key file"),
    (["--input", "IN", "--output", "OUT", "--profile", "basic", "--throwaway_key",
      "--runner", "FlinkRunner"], "--throwaway_key only works on a local runner"),
    (["--input", "gs://b/in", "--output", "gs://b/out", "--profile", "basic",
      "--runner", "DataflowRunner", "--secret_file", "KEY"], "cannot see local paths"),
])
def test_usage_errors_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "KEY").write_text("short")
    argv = [a.replace("IN", str(tmp_path / "in")).replace("OUT", str(tmp_path / "out"))
            .replace("KEY", str(tmp_path / "KEY")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err
    if expected == "no such profile":
        assert "basci" in err and "nope.yaml" in err  # every problem, not just the first
    if expected == "no secret key":
        assert "DEID_SECRET" in err and "--secret_file" in err
    assert not (tmp_path / "out").exists()


def test_a_short_key_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", "short")
    assert main(["--input", sample("CT_small.dcm"), "--output", str(tmp_path / "out"),
                 "--profile", "basic"]) == 2
    err = capsys.readouterr().err
    assert "shorter than" in err and "short" not in err.replace("shorter", "")


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--input", "--output", "--profile", "--quarantine_output",
                   "--linkage_output", "--secret_file", "--throwaway_key", "--allow_quarantine",
                   "--quarantine_copy", "--sample", "exit codes"):
        assert option in out


# --- the shared corpus, when present ---------------------------------------------------------

@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not there")
def test_corpus_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file())
    argv = ["--input", str(CORPUS), "--profile", "basic", "--linkage_output",
            str(tmp_path / "linkage")]
    report = run([*argv, "--output", str(tmp_path / "out")])
    manifest, _ = check_run(report, inputs, tmp_path / "out", tmp_path / "out-quarantine")
    assert report.written > 30
    uids = dict(read_pairs(tmp_path / "linkage" / "uid_mapping.csv"))
    assert {row["sop_instance_uid"] for row in manifest} <= set(uids.values())
    again = run([*argv, "--output", str(tmp_path / "again")])
    assert again.counts == report.counts
    assert dicom_outputs(tmp_path / "out") == dicom_outputs(tmp_path / "again")


# --- separate worker processes ------------------------------------------------------------

def _mixed_inputs(folder: Path) -> list[str]:
    """A few good files, a duplicate instance, a non-DICOM file, a truncated one."""
    folder.mkdir()
    for path in [*written_sample_files(4), sample("MR_small.dcm"), sample("MR_small_RLE.dcm")]:
        shutil.copy(path, folder / Path(path).name)
    (folder / "notes.txt").write_text("hello")
    (folder / "truncated.dcm").write_bytes(Path(sample("CT_small.dcm")).read_bytes()[:300])
    return sorted(str(p) for p in folder.iterdir())


def test_multi_processing_matches_a_single_process_run(tmp_path, monkeypatch):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    inputs = _mixed_inputs(tmp_path / "in")
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    base = ["--input", str(tmp_path / "in"), "--profile", "basic", "--secret_file",
            str(secret)]
    multi = run([*base, "--output", str(tmp_path / "multi"), "--direct_running_mode",
                 "multi_processing", "--direct_num_workers", "2"])
    check_run(multi, inputs, tmp_path / "multi", tmp_path / "multi-quarantine")
    assert multi.written >= 4 and multi.by_reason.get(DUPLICATE)
    single = run([*base, "--output", str(tmp_path / "single")])
    assert single.counts == multi.counts
    assert dicom_outputs(tmp_path / "multi") == dicom_outputs(tmp_path / "single")

    # a throwaway key is the one key that travels, pickled, to the worker processes
    throwaway = run(["--input", inputs[0], "--profile", "basic", "--throwaway_key",
                     "--output", str(tmp_path / "throwaway"), "--direct_running_mode",
                     "multi_processing", "--direct_num_workers", "2"])
    assert throwaway.consistent and throwaway.read == 1


# --- the Clean Pixel Data Option (PS3.15 E.3.1) ----------------------------------------------

def _pixel_inputs(folder: Path) -> dict[str, str]:
    """Synthetic instances at risk of burned-in text, by what should happen to them."""
    folder.mkdir()
    us_acme = image("US", model="SonoOne")  # pixel rule acme-top-bar
    sc_acme = image("SC")  # pixel rule acme-any
    us_regions_only = image("US", manufacturer="NOBODY")  # ultrasound_regions: keep-inside
    us_regions_only.SequenceOfUltrasoundRegions = us_regions((8, 10, 55, 39))
    uncovered = image("US", manufacturer="NOBODY")  # at risk, nothing covers it
    paths = {}
    for number, (name, ds) in enumerate({"us-acme": us_acme, "sc-acme": sc_acme,
                                         "us-regions": us_regions_only,
                                         "uncovered": uncovered}.items(), start=1):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{number}"
        paths[name] = str(folder / f"{name}.dcm")
        Path(paths[name]).write_bytes(to_bytes(ds))
    return paths


def test_pixel_rules_write_instances_that_were_quarantined(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs = _pixel_inputs(tmp_path / "in")
    profile = tmp_path / "site.yaml"
    profile.write_text(PIXEL_PROFILE.format(ultrasound="keep-inside", ocr="'off'"))
    before = run(["--input", str(tmp_path / "in"), "--profile", "clean-pixel-data",
                  "--output", str(tmp_path / "before")])
    check_run(before, list(inputs.values()), tmp_path / "before",
              tmp_path / "before-quarantine")
    assert (before.written, before.by_reason) == (0, {"burned_in_annotation": 4})

    report = run(["--sample", "--input", str(tmp_path / "in"), "--profile", str(profile),
                  "--output", str(tmp_path / "out")])
    every = [*SAMPLE, *inputs.values()]
    manifest, records = check_run(report, every, tmp_path / "out", tmp_path / "out-quarantine")
    reasons = {Path(r["input"]).name: r["reason"] for r in records}
    assert reasons["uncovered.dcm"] == "burned_in_annotation"
    assert not {"us-acme.dcm", "sc-acme.dcm", "us-regions.dcm"} & set(reasons)
    # What clean-pixel-data alone wrote is still written: pixel rules only add outputs.
    run(["--sample", "--profile", "clean-pixel-data", "--output", str(tmp_path / "plain")])
    plain = {r["input"] for r in read_jsonl(tmp_path / "plain-quarantine" / "quarantine.jsonl")}
    assert {r["input"] for r in records} - {inputs["uncovered"]} <= plain
    ours = [ds for ds in (pydicom.dcmread(tmp_path / "out" / row["output_path"])
                          for row in manifest)
            if (ds.get("Rows"), ds.get("Columns")) == (48, 64)]
    assert sorted(ds.Modality for ds in ours) == ["SC", "US", "US"]
    for ds in ours:
        assert ds.BurnedInAnnotation == "NO"
        assert "113101" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
        assert 0 in ds.PixelData and 200 in ds.PixelData  # blanked in part

"""Hostile and broken input: every kind in tests/hostile_inputs.py gives its expected outcome
through the engine and through a pipeline run, within bounded memory and time; truncation at
any offset never crashes and never passes a partial instance; hostile UIDs cannot place a file
outside the output."""

from __future__ import annotations

import dataclasses
import io
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from dicom_factory import KEY, SERIES_UID, STUDY_UID, base_dataset, to_bytes
from hostile_inputs import (
    WRITTEN,
    by_kind,
    encoded,
    hostile_inputs,
    instance,
    truncations,
)

from deid.beam.paths import STAGING, output_path
from deid.engine import Output, Rejection, deidentify_bytes
from deid.engine.files import MAX_INFLATED_BYTES
from deid.engine.stream import deidentify_stream
from deid.profile import load_profiles
from pipelines import deidentify

SECRET = "hostile-tests-0123456789abcdef"
# Values of the factory's instances that Basic removes or replaces: never in an output.
IDENTIFYING = [b"Doe", b"Jane", b"PID-0001", b"Hostile Input Hospital", b"20200315",
               "Müller".encode("latin-1"), "Jürgen".encode("latin-1"), b"ller^J"]
# Per input, whatever its kind: peak Python memory while de-identifying, and wall time.
PEAK_LIMIT = 64 << 20
SECONDS_LIMIT = 5.0
KINDS = [h.kind for h in hostile_inputs()]
# Hostile SOP Instance UIDs, kept as they are by retain-uids.
PATH_UIDS = ["../../../escaped", "/tmp/absolute", "1.2.3/../../4", "1.2.3\\..\\4",
             "1.2.3\x00/x", "1" + ".1" * 40, "1.2.3\n", "..", ".", ""]


def outcome(result: Output | Rejection) -> str:
    return WRITTEN if isinstance(result, Output) else result.reason


def measured(data: bytes, profile) -> tuple[Output | Rejection, int, float]:
    """The result, the peak of Python allocations (tracemalloc) and the wall time, from two
    runs: tracing slows allocation-heavy code tenfold."""
    start = time.perf_counter()
    result = deidentify_bytes(data, profile, KEY)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    try:
        deidentify_bytes(data, profile, KEY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak, seconds


def assert_clean_output(result: Output) -> None:
    """A written instance parses as a Part 10 file and holds no identifying value."""
    pydicom.dcmread(io.BytesIO(result.data))
    for value in IDENTIFYING:
        assert value not in result.data


@pytest.fixture(scope="module")
def basic():
    return load_profiles(["basic"])


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_gives_its_outcome_in_bounded_memory_and_time(kind, basic):
    hostile = by_kind(kind)
    result, peak, seconds = measured(hostile.data, basic)
    assert outcome(result) == hostile.expected, getattr(result, "message", "")
    assert peak < PEAK_LIMIT and seconds < SECONDS_LIMIT
    if isinstance(result, Output):
        assert_clean_output(result)
    else:
        assert result.message and "Doe" not in result.message
    if kind == "deflate_bomb":  # a few MiB refused before inflating past the cap
        assert len(hostile.data) < 8 << 20 and f"{MAX_INFLATED_BYTES >> 20} MiB" in result.message


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_streams_to_the_same_outcome(kind, basic):
    """The streaming path (huge files) refuses and writes what the in-memory path does."""
    hostile = by_kind(kind)
    sink = io.BytesIO()
    streamed = deidentify_stream(io.BytesIO(hostile.data), sink, basic, KEY)
    assert outcome(streamed) == hostile.expected, getattr(streamed, "message", "")


def test_deep_nesting_leaves_the_stack_usable_for_the_next_input(basic):
    limit = sys.getrecursionlimit()
    assert outcome(deidentify_bytes(by_kind("nested_5000").data, basic, KEY)) == "unreadable"
    assert sys.getrecursionlimit() == limit

    def depth(n: int) -> int:
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(limit - 50) == limit - 50  # the stack was unwound
    assert outcome(deidentify_bytes(by_kind("nested_64").data, basic, KEY)) == WRITTEN


def _cut_everywhere(data: bytes, stride: int, profile) -> Counter:
    """De-identify every truncation of `data`: each is rejected, or written whole."""
    seen: Counter = Counter()
    for offset in truncations(data, stride):
        result = deidentify_bytes(data[:offset], profile, KEY)
        seen[outcome(result)] += 1
        if isinstance(result, Output):
            assert_clean_output(result)
    return seen


def test_truncation_at_every_offset_of_a_small_file(basic):
    data = by_kind("undefined_length_sequence").data
    seen = _cut_everywhere(data, 1, basic)
    assert sum(seen.values()) == len(data)
    assert seen["unreadable"] > len(data) // 2


def test_truncation_at_a_stride_over_a_real_file(basic):
    data = Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes()
    seen = _cut_everywhere(data, 31, basic)
    # A cut inside the pixel data, the last element, is always detected.
    assert seen[WRITTEN] < 0.2 * sum(seen.values())
    assert set(seen) <= {WRITTEN, "unreadable", "not_dicom", "missing_attribute"}


@pytest.mark.slow
def test_truncation_at_every_offset_of_a_real_file(basic):
    data = Path(pydicom.data.get_testdata_file("rtplan.dcm")).read_bytes()
    _cut_everywhere(data, 1, basic)


# --- a pipeline run over every kind -------------------------------------------------------

WORKER_PROCESSES = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]


@pytest.mark.parametrize("runner_options", [
    pytest.param([], id="in-process"),
    pytest.param(WORKER_PROCESSES, id="worker-processes", marks=pytest.mark.slow),
])
def test_a_pipeline_run_over_every_kind(runner_options, tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs = tmp_path / "in"
    inputs.mkdir()
    expected = {}
    for hostile in hostile_inputs():
        path = inputs / f"{hostile.kind}.dcm"
        path.write_bytes(hostile.data)
        expected[str(path)] = hostile.expected
    output = tmp_path / "out"
    report = deidentify.run(deidentify.plan(["--input", str(inputs), "--output", str(output),
                                             "--profile", "basic", *runner_options]))
    assert report.consistent
    assert report.read == len(expected) == report.written + report.quarantined
    records = [json.loads(line) for line in
               (tmp_path / "out-quarantine" / "quarantine.jsonl").read_text().splitlines()]
    quarantined = {r["input"]: r["reason"] for r in records}
    assert len(quarantined) == len(records)  # each input once
    assert quarantined == {p: reason for p, reason in expected.items() if reason != WRITTEN}
    assert report.written == list(expected.values()).count(WRITTEN)
    files = sorted(p.relative_to(output) for p in output.rglob("*") if p.is_file())
    assert not (output / STAGING).exists()
    assert [_run_record_named(f) for f in files if f.suffix != ".dcm"] == [
        Path("collection.json"), Path("manifest.jsonl"), Path("manifest.parquet"),
        Path("metadata.parquet"), Path("runs/RUN.json")]
    assert all(len(f.parts) == 3 for f in files if f.suffix == ".dcm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out-quarantine"]


# --- hostile UIDs and the output location ---------------------------------------------------

@pytest.mark.parametrize("uid", PATH_UIDS)
def test_output_path_refuses_what_is_not_a_uid(uid):
    with pytest.raises(ValueError, match="SOPInstanceUID is not a valid UID") as caught:
        output_path("/out", "1.2.3", "1.2.3.4", uid)
    if len(uid) > 2:
        assert uid not in str(caught.value)
    assert output_path("/out", "1.2", "1.2.3", "1.2.3.4") == "/out/1.2/1.2.3/1.2.3.4.dcm"


def _with_uid(data: bytes, uid: bytes) -> bytes:
    """Re-encode the SOP Instance UID (0008,0018) with raw bytes pydicom would not accept."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    raw = pydicom.dataelem.RawDataElement(pydicom.tag.Tag(0x00080018), "UI", len(uid), uid, 0,
                                          False, True)
    ds._dict[0x00080018] = raw
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def retain_uids():
    return load_profiles(["basic", "retain-uids"])


@pytest.mark.parametrize("uid", PATH_UIDS)
def test_retain_uids_rejects_a_uid_that_is_not_one(uid, retain_uids):
    data = _with_uid(to_bytes(base_dataset()), uid.encode("latin-1"))
    result = deidentify_bytes(data, retain_uids, KEY)
    if uid == "1.2.3\n":  # pydicom strips the whitespace: a valid UID
        assert isinstance(result, Output) and result.sop_instance_uid == "1.2.3"
    else:
        multi_valued = uid == "" or "\\" in uid  # a backslash separates values
        assert outcome(result) == ("missing_attribute" if multi_valued else "invalid_uid")


def test_hostile_uids_stay_inside_the_output_in_a_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for number, uid in enumerate(PATH_UIDS):
        ds = instance(number)
        (inputs / f"uid-{number}.dcm").write_bytes(_with_uid(encoded(ds), uid.encode()))
    report = deidentify.run(deidentify.plan([
        "--input", str(inputs), "--output", str(tmp_path / "out"), "--profile", "basic",
        "--profile", "retain-uids"]))
    assert report.consistent and report.written == 1  # "1.2.3\n", read as 1.2.3
    assert report.by_reason == {"invalid_uid": len(PATH_UIDS) - 3, "missing_attribute": 2}
    assert [_run_record_named(p) for p in _files_outside(tmp_path, tmp_path / "in")] == \
        sorted(Path(p) for p in [
            "out/collection.json", "out/manifest.jsonl", "out/manifest.parquet",
            "out/metadata.parquet", "out/runs/RUN.json", "out-quarantine/ledger/ledger.jsonl",
            "out-quarantine/quarantine.jsonl",
            f"out/{STUDY_UID}/{SERIES_UID}/1.2.3.dcm"])
    assert not Path("/tmp/absolute.dcm").exists()


def _run_record_named(path: Path) -> Path:
    """runs/<run id>.json (the run's record, issue 14) as runs/RUN.json."""
    return path.with_name("RUN.json") if path.parent.name == "runs" else path


def _files_outside(root: Path, folder: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and not p.is_relative_to(folder))


@pytest.mark.parametrize("uid", ["../../../escaped", "1.2.3/../../4", "/tmp/absolute"])
def test_deid_file_into_a_folder_never_names_a_file_by_a_hostile_uid(uid, tmp_path,
                                                                      monkeypatch, capsys):
    from deid import cli

    monkeypatch.setenv("DEID_SECRET", SECRET)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = tmp_path / "in" / "x.dcm"
    source.write_bytes(_with_uid(to_bytes(base_dataset()), uid.encode()))
    argv = ["file", str(source), str(tmp_path / "out"), "-p", "basic", "-p", "retain-uids"]
    assert cli.main(argv) == 1
    assert "invalid_uid" in capsys.readouterr().err
    # Even if the engine let such a UID through, the folder output would not use it.
    good = deidentify_bytes(to_bytes(base_dataset()), load_profiles(["basic"]), KEY)
    hostile = dataclasses.replace(good, sop_instance_uid=uid)
    monkeypatch.setattr("deid.engine.deidentify_bytes", lambda *args: hostile)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot name a file" in err and uid not in err
    assert _files_outside(tmp_path, tmp_path / "in") == []
    assert not Path("/tmp/absolute.dcm").exists()


# Address space for a process that de-identifies the deflate bomb: Python, pydicom and the
# engine take about 300 MiB of it; inflating the bomb whole would take 4 GiB more.
BOMB_ADDRESS_SPACE = 1 << 30
_UNDER_LIMIT = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from dicom_factory import KEY
from hostile_inputs import by_kind
from deid.engine import deidentify_bytes
from deid.profile import load_profiles
profile, bomb = load_profiles(["basic"]), by_kind("deflate_bomb").data
if sys.argv[3] != "default":
    import deid.engine.files
    deid.engine.files.MAX_INFLATED_BYTES = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
result = deidentify_bytes(bomb, profile, KEY)
print(result.reason, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bomb_under_address_limit(limit: int = BOMB_ADDRESS_SPACE,
                             cap: int | None = None) -> tuple[str, int]:
    """The deflate bomb's outcome in a process limited to `limit` bytes of address space
    (RLIMIT_AS: every allocation, C included), with the engine's inflation cap or `cap`, and
    the process's peak resident size in KiB."""
    done = subprocess.run([sys.executable, "-c", _UNDER_LIMIT, str(limit),
                           str(Path(__file__).parent), "default" if cap is None else str(cap)],
                          capture_output=True, text=True, timeout=120, check=True)
    reason, peak = done.stdout.split()
    return reason, int(peak)


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_AS"), reason="no RLIMIT_AS here")
def test_the_deflate_bomb_is_refused_under_a_memory_limit():
    reason, peak_kib = bomb_under_address_limit()
    assert reason == "too_large" and peak_kib < BOMB_ADDRESS_SPACE >> 10


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(resource, "RLIMIT_AS"), reason="no RLIMIT_AS here")
def test_without_the_cap_the_bomb_exhausts_the_memory_limit():
    """The control of the test above (slow: it inflates until the limit stops it)."""
    assert bomb_under_address_limit(cap=1 << 40)[0] == "unreadable"  # a MemoryError

"""A run is a release step: preflight before Beam starts, exit codes scripts can trust, junk
inputs ignored and counted. Inputs are a handful of pydicom's test files, so each run takes
a second or two."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import s3_client, written_sample_files

from pipelines.deidentify import main, sample_files

SECRET = "collection-tests-0123456789abcdef"
SAMPLE = {Path(p).name: p for p in sample_files()}
CLEAN = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "waveform_ecg.dcm")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def clean_inputs(folder: Path, names=CLEAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SAMPLE[name], folder / name)
    return folder


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)


# --- preflight: before Beam starts, exit 2, one line each ------------------------------------

@pytest.mark.parametrize("what, expected", [
    ("output_file", "--output {out} is a file: choose a folder"),
    ("quarantine_file", "--quarantine_output {out}-quarantine is a file"),
    ("linkage_file", "--linkage_output {tmp}/link is a file"),
    ("output_uncreatable", "--output /proc/deid-out: cannot create the folder"),
])
def test_preflight_failures_are_usage_errors(what, expected, tmp_path, secret, capsys):
    inputs = clean_inputs(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["--input", str(inputs), "--output", str(out), "--profile", "basic",
            "--linkage_output", str(tmp_path / "link")]
    if what == "output_file":
        out.write_text("x")
    elif what == "quarantine_file":
        Path(f"{out}-quarantine").write_text("x")
    elif what == "linkage_file":
        (tmp_path / "link").write_text("x")
    else:
        argv[3] = "/proc/deid-out"
        argv += ["--quarantine_output", str(tmp_path / "q")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected.format(out=out, tmp=tmp_path) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.rglob("manifest.jsonl"))  # Beam never started


def test_every_preflight_problem_is_reported(tmp_path, secret, capsys):
    inputs = clean_inputs(tmp_path / "in")
    (tmp_path / "out").write_text("x")
    (tmp_path / "link").write_text("x")
    assert main(["--input", str(inputs), "--output", str(tmp_path / "out"), "--profile",
                 "basic", "--linkage_output", str(tmp_path / "link")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split()[2] for line in lines] == ["--output", "--linkage_output"]


def test_a_missing_bucket_is_a_usage_error(moto_s3, tmp_path, secret, capsys):
    s3_client(moto_s3).create_bucket(Bucket="deid-preflight")
    inputs = clean_inputs(tmp_path / "in")
    bucket_options = ["--s3_endpoint_url", moto_s3["endpoint"],
                      "--s3_access_key_id", moto_s3["access_key"],
                      "--s3_secret_access_key", moto_s3["secret_key"],
                      "--s3_region_name", moto_s3["region"]]
    assert main(["--input", str(inputs), "--output", "s3://no-such-bucket/out",
                 "--quarantine_output", "s3://deid-preflight/q", "--profile", "basic",
                 *bucket_options]) == 2
    err = capsys.readouterr().err
    assert "--output s3://no-such-bucket/out is not writable" in err
    assert "--quarantine_output" not in err  # that one is writable
    assert not s3_client(moto_s3).list_objects_v2(Bucket="deid-preflight").get("Contents")


# --- inputs that are not instances ------------------------------------------------------------

def test_junk_is_ignored_and_counted_not_quarantined(tmp_path, secret, capsys):
    inputs = clean_inputs(tmp_path / "in")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini", "._CT_small.dcm",
                 "__MACOSX/in/._MR_small.dcm", "README.txt", "notes/readme.md"):
        (inputs / junk).parent.mkdir(parents=True, exist_ok=True)
        (inputs / junk).write_bytes(b"\0\0junk")
    shutil.copy(SAMPLE["DICOMDIR"], inputs / "DICOMDIR")
    code = main(["--input", str(inputs), "--output", str(tmp_path / "out"), "--profile",
                 "basic", "--exclude", "README*", "--exclude", "*/notes/*"])
    out = capsys.readouterr().out
    assert "12 files found under 1 input(s), 7 ignored" in out
    assert "ignored            7 files" in out
    records = read_jsonl(tmp_path / "out-quarantine" / "quarantine.jsonl")
    assert [(Path(r["input"]).name, r["reason"]) for r in records] == [("DICOMDIR", "dicomdir")]
    assert code == 1  # the DICOMDIR is quarantined: junk alone would not turn the code to 1
    assert len(read_jsonl(tmp_path / "out" / "manifest.jsonl")) == len(CLEAN)


def test_only_junk_is_nothing_to_do(tmp_path, secret, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / ".DS_Store").write_bytes(b"junk")
    assert main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--profile", "basic"]) == 2
    assert "all 1 files found are ignored" in capsys.readouterr().err


# --- collections: runs that add, refuse, resume ------------------------------------------------

def copy_into(folder: Path, files: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy(path, folder / Path(path).name)
    return folder


def dicom_outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}


def crosswalk(folder: Path, name: str) -> list[str]:
    lines = (folder / name).read_text().splitlines()
    assert lines[0] == "id_old,id_new"
    assert len(lines) == len(set(lines))  # each row once
    return sorted(lines[1:])


def everything(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Two batches into one output and one linkage folder (the second holds a copy of an
    instance of the first), a rerun of the second, and the same files in one run."""
    root = tmp_path_factory.mktemp("batches")
    files = written_sample_files(16)
    first = copy_into(root / "batch1", files[:8])
    second = copy_into(root / "batch2", files[8:])
    shutil.copy(files[0], second / "copy-of-the-first.dcm")
    both = copy_into(root / "both", files)
    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEID_SECRET", SECRET)
        for name, folder, target in (("first", first, "out"), ("second", second, "out"),
                                     ("rerun", second, "out"), ("reference", both, "ref")):
            outputs[name] = main(["--input", str(folder), "--output", str(root / target),
                                  "--linkage_output", str(root / f"{target}-link"),
                                  "--profile", "basic"])
    return root, outputs


def test_two_batches_make_one_collection(batches):
    root, codes = batches
    assert codes == {"first": 0, "second": 1, "rerun": 1, "reference": 0}
    out, ref = root / "out", root / "ref"
    assert dicom_outputs(out) == dicom_outputs(ref) and len(dicom_outputs(out)) == 16
    rows = read_jsonl(out / "manifest.jsonl")
    assert len(rows) == len({r["sop_instance_uid"] for r in rows}) == 16  # each once
    key = lambda r: r["sop_instance_uid"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(read_jsonl(ref / "manifest.jsonl"), key=key)
    for name in ("uid_mapping.csv", "patid_mapping.csv"):  # merged, never truncated
        assert crosswalk(root / "out-link", name) == crosswalk(root / "ref-link", name)
    metadata = pq.read_table(out / "metadata.parquet").to_pylist()
    assert sorted(r["SOPInstanceUID"] for r in metadata) == sorted(r["sop_instance_uid"]
                                                                   for r in rows)
    records = read_jsonl(root / "out-quarantine" / "quarantine.jsonl")
    assert [(Path(r["input"]).name, r["reason"]) for r in records] == \
        [("copy-of-the-first.dcm", "duplicate_instance")]
    assert everything(root / "out-quarantine") == {"quarantine.jsonl", "ledger/ledger.jsonl"}
    assert not (root / "out-link" / "pending").exists()


def test_a_rerun_skips_what_is_done(batches):
    root, _ = batches
    runs = sorted((root / "out" / "runs").glob("*.json"))
    records = [json.loads(p.read_text()) for p in runs]
    assert [r["status"] for r in records] == ["finished"] * 3
    first, second, rerun = (r["counts"] for r in records)
    assert (first["instances_read"], first["instances_written"]) == (8, 8)
    assert (second["instances_read"], second["instances_written"]) == (9, 8)
    assert rerun.get("instances_read", 0) == 0
    assert (rerun["already_written"], rerun["already_quarantined"]) == (8, 1)
    assert rerun["collection_written"] == 16


def test_run_records_hold_no_paths_and_no_key(batches):
    root, _ = batches
    collection = json.loads((root / "out" / "collection.json").read_text())
    assert collection["version"] == 1 and collection["edition"]
    assert [p["name"] for p in collection["profiles"]] == ["basic"]
    assert len(collection["key_fingerprint"]) == 64
    for path in (root / "out" / "runs").glob("*.json"):
        text = path.read_text()
        record = json.loads(text)
        assert record["key_fingerprint"] == collection["key_fingerprint"]
        assert record["tool_version"] and record["started"] <= record["ended"]
        assert str(root) not in text and "batch" not in text and SECRET not in text
        assert record["inputs"][0]["scheme"] == "file"


def test_another_key_or_other_profiles_are_refused(batches, monkeypatch, capsys):
    root, _ = batches
    before = everything(root / "out")
    argv = ["--input", str(root / "batch1"), "--output", str(root / "out"), "--profile", "basic"]
    monkeypatch.setenv("DEID_SECRET", SECRET + "-another")
    assert main(argv) == 2
    assert "holds a collection made with another key" in capsys.readouterr().err
    monkeypatch.setenv("DEID_SECRET", SECRET)
    assert main([*argv, "--profile", "retain-uids"]) == 2
    assert "other profiles" in capsys.readouterr().err
    assert everything(root / "out") == before


def test_a_folder_that_is_not_a_collection_is_refused(tmp_path, secret, capsys):
    inputs = clean_inputs(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main(["--input", str(inputs), "--output", str(tmp_path / "out"),
                 "--profile", "basic"]) == 2
    assert "holds files but no collection.json" in capsys.readouterr().err


def test_a_new_version_replaces_the_collection(tmp_path, monkeypatch, capsys):
    inputs = copy_into(tmp_path / "in", written_sample_files(3))
    argv = ["--input", str(inputs), "--output", str(tmp_path / "out"), "--profile", "basic",
            "--linkage_output", str(tmp_path / "link")]
    monkeypatch.setenv("DEID_SECRET", SECRET)
    assert main(argv) == 0
    old = dicom_outputs(tmp_path / "out")
    monkeypatch.setenv("DEID_SECRET", SECRET + "-version-2")
    assert main([*argv, "--new_version"]) == 0
    new = dicom_outputs(tmp_path / "out")
    assert len(new) == 3 and not set(new) & set(old)  # other UIDs, the old ones gone
    assert json.loads((tmp_path / "out" / "collection.json").read_text())["version"] == 2
    assert len(read_jsonl(tmp_path / "out" / "manifest.jsonl")) == 3
    assert len(crosswalk(tmp_path / "link", "uid_mapping.csv")) == \
        len(set(crosswalk(tmp_path / "link", "uid_mapping.csv")))


def test_verify_reports_leftovers_and_a_rerun_cleans_them(tmp_path, monkeypatch, capsys):
    from deid.cli import main as deid

    monkeypatch.setenv("DEID_SECRET", SECRET)
    inputs = copy_into(tmp_path / "in", written_sample_files(3))
    argv = ["--input", str(inputs), "--output", str(tmp_path / "out"), "--profile", "basic"]
    assert main(argv) == 0
    capsys.readouterr()
    finished = everything(tmp_path / "out")
    out = tmp_path / "out"
    # what an interrupted run leaves: a staging file, Beam's temporary folder, an instance
    # that no manifest row lists, and its run record
    stray = next(out.rglob("*.dcm"))
    (out / "2.25.1" / "2.25.2").mkdir(parents=True)
    shutil.copy(stray, out / "2.25.1" / "2.25.2" / "2.25.3.dcm")
    (out / ".deid-staging" / "20260101T000000-dead").mkdir(parents=True)
    shutil.copy(stray, out / ".deid-staging" / "20260101T000000-dead" / "0f.dcm")
    (out / "beam-temp-manifest-0123").mkdir()
    (out / "beam-temp-manifest-0123" / "part").write_text("{}")
    (out / "runs" / "20260101T000000-dead.json").write_text(json.dumps(
        {"run": "20260101T000000-dead", "status": "running"}))
    verify = ["verify", "--original", str(inputs), "--deidentified", str(out), "-p", "basic",
              "--json", "-"]
    assert deid(verify) == 1
    report = json.loads(capsys.readouterr().out)
    unpaired = [i["deidentified"] for i in report["instances"] if i["status"] == "failed"]
    assert sorted(Path(p).name for p in unpaired) == ["0f.dcm", "2.25.3.dcm", "part"]
    assert [f["check"] for f in report["set_findings"]] == ["unfinished_run"]

    assert main(argv) == 0
    assert "cleaned up   2 temporary and 1 stray file(s)" in capsys.readouterr().out
    runs = {p.name for p in (out / "runs").iterdir()}
    assert everything(out) == finished | {f"runs/{name}" for name in runs}
    assert json.loads((out / "runs" / "20260101T000000-dead.json").read_text())["resumed_by"]
    assert deid(verify) == 0


# --- interrupted runs: Ctrl-C and a killed worker, then a rerun -----------------------------

SLOW_RUN = Path(__file__).parent / "slow_run"


def start_run(argv: list[str], slow: float) -> subprocess.Popen:
    """`deid run` in its own process group, each file and commit slowed down by ``slow``
    seconds (tests/slow_run/sitecustomize.py), so that it can be interrupted midway."""
    env = {**os.environ, "DEID_SECRET": SECRET, "DEID_TEST_SLOW": str(slow),
           "PYTHONPATH": os.pathsep.join([str(SLOW_RUN), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "deid.cli", "run", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, cwd=Path(__file__).parents[1])


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.1)


def workers(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and b"deid.beam.worker" in command:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """30 instances and 2 inputs that are not, run once without interruption."""
    root = tmp_path_factory.mktemp("interrupted")
    inputs = copy_into(root / "in", written_sample_files(30))
    (inputs / "notes.txt").write_text("not DICOM")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEID_SECRET", SECRET)
        assert main(["--input", str(inputs), "--output", str(root / "ref"), "--profile",
                     "basic", "--linkage_output", str(root / "ref-link")]) == 1
    return root, inputs


def check_resumed(root: Path, name: str) -> None:
    """The rerun's collection is the uninterrupted run's, with nothing else in it."""
    out, ref = root / name, root / "ref"
    assert dicom_outputs(out) == dicom_outputs(ref)
    key = lambda r: r["sop_instance_uid"]  # noqa: E731
    assert sorted(read_jsonl(out / "manifest.jsonl"), key=key) == \
        sorted(read_jsonl(ref / "manifest.jsonl"), key=key)
    for link in ("uid_mapping.csv", "patid_mapping.csv"):
        assert crosswalk(root / f"{name}-link", link) == crosswalk(root / "ref-link", link)
    assert {(Path(r["input"]).name, r["reason"]) for r in
            read_jsonl(root / f"{name}-quarantine" / "quarantine.jsonl")} == {
        ("notes.txt", "not_dicom")}
    outside = {p for p in everything(out) if not p.endswith(".dcm")}
    assert {p for p in outside if not p.startswith("runs/")} == {
        "collection.json", "manifest.jsonl", "manifest.parquet", "metadata.parquet"}
    assert everything(root / f"{name}-quarantine") == {"quarantine.jsonl", "ledger/ledger.jsonl"}
    assert everything(root / f"{name}-link") == {"uid_mapping.csv", "patid_mapping.csv"}
    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    assert records[0]["status"] != "finished" and records[0]["resumed_by"] == records[-1]["run"]
    assert records[-1]["status"] == "finished"


@pytest.mark.parametrize("how", ["ctrl_c", "killed_worker"])
def test_an_interrupted_run_resumes_to_the_same_collection(how, reference, secret, capsys):
    root, inputs = reference
    name = f"out-{how}"
    argv = ["--input", str(inputs), "--output", str(root / name), "--profile", "basic",
            "--linkage_output", str(root / f"{name}-link"),
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    run = start_run(argv, slow=0.1)
    try:  # interrupt once some instances are committed
        wait_for(lambda: len(list((root / name).rglob("2.25.*.dcm"))) >= 3)
        if how == "ctrl_c":
            os.killpg(run.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        else:
            os.kill(workers(run.pid)[0], signal.SIGKILL)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    text = err.decode()
    if how == "ctrl_c":
        assert run.returncode == 130, text
        assert text.strip().splitlines()[-1] == \
            "deid run: interrupted; run the same command again to resume"
        assert "Traceback" not in text
    else:
        assert run.returncode == 3, text
        assert "deid run: the pipeline failed" in text and "Traceback" not in text
    assert main(argv) == 1, capsys.readouterr()  # the not-DICOM file stays quarantined
    check_resumed(root, name)


# --- the same in a bucket (S3 on moto) ----------------------------------------------------------

@pytest.mark.slow  # ~25 s a run: Beam makes a boto3 client per S3 file object it opens
def test_two_batches_and_a_rerun_into_a_bucket(moto_s3, tmp_path, secret):
    s3 = s3_client(moto_s3)
    s3.create_bucket(Bucket="deid-collection")
    files = written_sample_files(6)
    batches = [copy_into(tmp_path / "batch1", files[:3]), copy_into(tmp_path / "batch2", files[3:])]
    base = "s3://deid-collection/"
    options = ["--s3_endpoint_url", moto_s3["endpoint"],
               "--s3_access_key_id", moto_s3["access_key"],
               "--s3_secret_access_key", moto_s3["secret_key"],
               "--s3_region_name", moto_s3["region"]]

    def objects() -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket="deid-collection").get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket="deid-collection", Key=o["Key"])["Body"].read()
                for o in listed}

    def deid_run(folder: Path) -> int:
        return main(["--input", str(folder), "--output", base + "out", "--quarantine_output",
                     base + "quarantine", "--linkage_output", base + "link", "--profile",
                     "basic", *options])

    assert deid_run(batches[0]) == 0
    s3.put_object(Bucket="deid-collection", Key="out/beam-temp-manifest-0123/part", Body=b"{}")
    assert deid_run(batches[1]) == 0
    assert deid_run(batches[1]) == 0  # a rerun: everything already written
    found = objects()
    rows = [json.loads(line) for line in found["out/manifest.jsonl"].decode().splitlines()]
    assert len(rows) == len({r["sop_instance_uid"] for r in rows}) == 6
    assert {f"out/{r['output_path']}" for r in rows} == \
        {key for key in found if key.endswith(".dcm")}
    uids = found["link/uid_mapping.csv"].decode().splitlines()
    assert uids[0] == "id_old,id_new" and len(uids) == len(set(uids)) > 6 * 3
    assert not [key for key in found if "beam-temp" in key or ".deid-staging" in key
                or "pending" in key or "lock" in key or "probe" in key]
    ledger = [key for key in found if key.startswith("quarantine/ledger/")]
    assert ledger == ["quarantine/ledger/ledger.jsonl"]
    records = [json.loads(found[key]) for key in sorted(found) if key.startswith("out/runs/")]
    assert [r["status"] for r in records] == ["finished"] * 3
    assert records[-1]["counts"]["already_written"] == 3
    assert "instances_read" not in records[-1]["counts"] or \
        records[-1]["counts"]["instances_read"] == 0


def test_ctrl_c_in_memory_is_one_line_and_exit_130(reference, tmp_path):
    """In-memory mode runs the DoFns in the launcher itself: the interrupt lands inside Beam."""
    _, inputs = reference
    run = start_run(["--input", str(inputs), "--output", str(tmp_path / "out"), "--profile",
                     "basic", "--direct_running_mode", "in_memory"], slow=0.1)
    try:
        wait_for(lambda: (tmp_path / "out" / "runs").is_dir())
        time.sleep(1)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    text = err.decode()
    assert run.returncode == 130, text
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == \
        "deid run: interrupted; run the same command again to resume"
    record = json.loads(next((tmp_path / "out" / "runs").glob("*.json")).read_text())
    assert record["status"] == "interrupted"


def test_a_second_run_while_one_writes_is_refused(tmp_path, secret, capsys):
    import socket

    inputs = clean_inputs(tmp_path / "in")
    lock = tmp_path / "out-quarantine" / "ledger" / "lock.json"
    lock.parent.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        lock.write_text(json.dumps({"run": "x", "host": socket.gethostname(),
                                    "pid": other.pid}))
        try:
            assert main(["--input", str(inputs), "--output", str(tmp_path / "out"),
                         "--profile", "basic"]) == 2
        finally:
            other.kill()
    assert f"another run (process {other.pid}) is writing" in capsys.readouterr().err
    assert main(["--input", str(inputs), "--output", str(tmp_path / "out"),
                 "--profile", "basic"]) == 0  # a lock whose process is gone is stale
    assert not lock.exists()


def test_the_progress_line_sums_the_processes(tmp_path):
    import io

    from deid.beam.progress import ProgressLine, line

    assert line(50, 200, 10.0) == \
        "deid run:      50/200 files  25.0%      5.0 files/s  ETA 0:00:30"
    assert line(0, 200, 0.0).endswith("ETA -")
    with ProgressLine(200, stream=io.StringIO()) as progress:
        folder = Path(os.environ["DEID_PROGRESS_DIR"])
        (folder / "101").write_text("30")
        (folder / "102").write_text("12")
        (folder / ".103").write_text("99")  # being written: not counted yet
        assert progress.done() == 42
    assert "DEID_PROGRESS_DIR" not in os.environ and not folder.exists()

"""The job as a cluster runs it: Beam's portability framework, on this machine.

Flink, Spark and Dataflow run a Beam Python job through the Job API (the pipeline as a proto)
with workers that are separate SDK processes and get nothing else. Beam's local job service
and a worker pool are that path without a cluster: the test starts both on free loopback
ports, runs `deid run --runner PortableRunner` with every feature (quarantine and the other
tagged outputs, metrics in the summary, manifest, crosswalks, verify) and compares what it
wrote (instances, manifest, metadata, quarantine, crosswalks, verify report) with the local
runner's run, byte for byte where the output is a file of its own. Then how `--runner` is
resolved.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import BIN, _listens, _start, _stop, free_port
from test_pipeline import sorted_metadata

from pipelines import deidentify
from pipelines.deidentify import main, sample_files

KEY = "portable-tests-0123456789abcdef"  # a test key, not a secret
# A handful of inputs: three written (CT, MR, RTSTRUCT) and one of each way not to be:
# MR_small_RLE is MR_small's instance again (duplicate_instance), SC_rgb_rle has burned-in
# annotation (burned_in_annotation), MR_truncated is cut short (unreadable).
NAMES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "rtstruct.dcm", "SC_rgb_rle.dcm",
         "MR_truncated.dcm")
INPUTS = [next(p for p in sample_files() if Path(p).name == name) for name in NAMES]
WORKER_POOL = Path(__file__).with_name("beam_worker_pool.py")


@pytest.fixture(scope="module")
def job_service(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Beam's local job service and a worker pool on free loopback ports; stopped after the
    module. The worker pool starts each SDK worker as `python` from PATH: this venv's comes
    first. Neither holds the key: the workers read it from --secret_file, as on a cluster."""
    folder = tmp_path_factory.mktemp("portable")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("DEID_SECRET", None)
    job_port, pool_port = free_port(), free_port()
    job = _start([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                  "--port", str(job_port), "--staging_dir", str(folder / "staging")],
                 folder / "job_service.log", _listens(job_port), env)
    try:
        pool = _start([sys.executable, str(WORKER_POOL), str(pool_port)],
                      folder / "worker_pool.log", _listens(pool_port), env)
        try:
            yield {"job_endpoint": f"localhost:{job_port}",
                   "environment_config": f"localhost:{pool_port}", "logs": str(folder)}
        finally:
            _stop(pool)
    finally:
        _stop(job)


def deid_run(root: Path, name: str, *runner: str) -> subprocess.CompletedProcess:
    """`deid run` as a user types it, with every feature, into root/<name>*."""
    argv = [str(BIN / "deid"), "run", *runner, "--profile", "basic", "--secret_file",
            str(root / "key"), "--output", str(root / name), "--linkage_output",
            str(root / f"{name}-linkage"), "--quarantine_copy", "--verify", "--allow_quarantine"]
    for path in INPUTS:
        argv += ["--input", path]
    env = {k: v for k, v in os.environ.items() if k != "DEID_SECRET"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def runs(job_service, tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    root = tmp_path_factory.mktemp("runs")
    (root / "key").write_text(KEY)
    done = {"local": deid_run(root, "local"),
            "portable": deid_run(root, "portable", "--runner", "PortableRunner",
                                 "--job_endpoint", job_service["job_endpoint"],
                                 "--environment_type", "EXTERNAL",
                                 "--environment_config", job_service["environment_config"])}
    for name, result in done.items():
        assert result.returncode == 0, f"{name} run:\n{result.stdout}\n{result.stderr}"
    return root, done


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def placed(rows: list[dict], root: Path, name: str, key: str) -> list[dict]:
    """Rows with their paths relative to the run's folder (absolute ones made so), in a
    stable order."""
    def relative(path: str) -> str:
        return Path(path).relative_to(root / name).as_posix() if Path(path).is_absolute() \
            else path
    return sorted(({**row, key: relative(row[key])} if row.get(key) else row for row in rows),
                  key=json.dumps)


def test_the_portable_run_writes_the_local_runs_bytes(runs):
    root, _ = runs
    local, portable = files(root / "local"), files(root / "portable")
    instances = {name for name in local if name.endswith(".dcm")}
    assert len(instances) == 3
    assert {name for name in portable if name.endswith(".dcm")} == instances
    for name in instances:
        assert portable[name] == local[name], name
    assert placed(jsonl(root / "portable" / "manifest.jsonl"), root, "portable",
                  "output_path") == \
        placed(jsonl(root / "local" / "manifest.jsonl"), root, "local", "output_path")
    assert pq.read_table(root / "portable" / "manifest.parquet").num_rows == 3
    assert sorted_metadata(root / "portable") == sorted_metadata(root / "local")
    assert len(sorted_metadata(root / "portable")) == 3


def test_tagged_outputs_arrive_quarantine_and_copies(runs):
    root, _ = runs
    records = {name: placed(jsonl(root / f"{name}-quarantine" / "quarantine.jsonl"), root,
                            f"{name}-quarantine", "copy") for name in ("local", "portable")}
    assert records["portable"] == records["local"]
    assert sorted(r["reason"] for r in records["portable"]) == \
        ["burned_in_annotation", "duplicate_instance", "unreadable"]
    for record in jsonl(root / "portable-quarantine" / "quarantine.jsonl"):
        assert Path(record["copy"]).read_bytes() == Path(record["input"]).read_bytes()


def test_crosswalks_and_the_verify_report_match(runs):
    root, _ = runs
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        rows = {run: sorted(csv.reader(io.StringIO(
            (root / f"{run}-linkage" / name).read_text())))
            for run in ("local", "portable")}
        assert rows["portable"] == rows["local"]
        assert len(rows["portable"]) > 1
    reports = {run: json.loads((root / run / "verify_report.json").read_text())
               for run in ("local", "portable")}
    assert reports["portable"] == reports["local"]
    assert reports["portable"]["instances_verified"] >= 3


def test_metrics_reach_the_summary(runs):
    """Counters come back from the SDK workers through the job service."""
    root, done = runs

    def counts(result: subprocess.CompletedProcess) -> list[str]:
        lines = result.stdout.splitlines()
        return [" ".join(line.split()[:3]) for line in lines
                if line.split()[:1] in (["read"], ["written"], ["quarantined"])] + \
            [line.strip() for line in lines if line.startswith("    ") and
             line.split()[-1].isdigit()]

    assert any(line.startswith("deid run: done") and "on PortableRunner" in line
               for line in done["portable"].stdout.splitlines())
    assert counts(done["portable"]) == counts(done["local"])
    assert counts(done["portable"])[:3] == ["read 6 files", "written 3 files",
                                            "quarantined 3 files"]
    assert "0 finding(s)" in done["portable"].stdout


# --- --runner ----------------------------------------------------------------------------------

@pytest.mark.parametrize("runner", ["DaskRunner", "dask",
                                    "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_the_dask_runner_is_refused_and_why(runner, tmp_path, capsys):
    argv = ["--input", INPUTS[0], "--output", str(tmp_path / "out"), "--profile", "basic",
            "--runner", runner, "--dask_client_address", "localhost:8786"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "writes one of a pipeline's sinks only" in err and "no metrics" in err
    assert "unrecognized" not in err


@pytest.mark.parametrize("runner, expected", [
    ("Flinkk", "not one of Beam's runners"),
    ("no_such_module.Runner", "cannot load no_such_module.Runner"),
    ("json.JSONDecoder", "not a Beam PipelineRunner"),
])
def test_a_runner_that_cannot_run_is_a_usage_error(runner, expected, tmp_path, capsys):
    argv = ["--input", INPUTS[0], "--output", str(tmp_path / "out"), "--profile", "basic",
            "--runner", runner]
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_beam_short_names_resolve_case_insensitively(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", KEY)
    for runner in ("PortableRunner", "portable", "flinkrunner"):
        checked = deidentify.plan(["--input", INPUTS[0], "--output", str(tmp_path / "out"),
                                   "--profile", "basic", "--runner", runner])
        assert not deidentify.is_local(checked.options)


def test_a_named_runner_brings_its_options(tmp_path, monkeypatch, capsys):
    """A runner named by module and class: the options its module defines are accepted (before,
    they were unknown arguments because the module was imported only when the job ran)."""
    (tmp_path / "site_runner.py").write_text(textwrap.dedent("""
        from apache_beam.options.pipeline_options import PipelineOptions
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        class SiteOptions(PipelineOptions):
            @classmethod
            def _add_argparse_args(cls, parser):
                parser.add_argument("--site_cluster")

        class SiteRunner(FnApiRunner):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEID_SECRET", KEY)
    argv = ["--input", INPUTS[0], "--output", str(tmp_path / "out"), "--profile", "basic",
            "--site_cluster", "hpc-7"]
    assert main(argv) == 2  # no runner names it: unknown
    assert "unrecognized arguments: --site_cluster" in capsys.readouterr().err
    checked = deidentify.plan([*argv, "--runner", "site_runner.SiteRunner"])
    assert checked.options.get_all_options()["site_cluster"] == "hpc-7"

"""The benchmark's command in quick mode: every own tool measured, its table, JSON and plot
written. No timing is asserted (the machine may be shared); only that each tool did the work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom

from benchmarks import corpus

ROOT = Path(__file__).parent.parent
OWN_TOOLS = ["floor", "engine", "beam-in-memory", "beam-2-workers"]


def test_quick_benchmark_writes_a_row_per_tool(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--tools", ",".join(OWN_TOOLS),
         "--results", str(results), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    table = (results / "results.md").read_text()
    rows = [line.split("|")[1:-1] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| tool")]
    assert [row[0].strip() for row in rows] == OWN_TOOLS
    assert all(row[2].strip() == row[1].strip() == "12" for row in rows)  # written == N
    measured = json.loads((results / "results.json").read_text())["rows"]
    assert all(r["error"] is None and r["seconds"] > 0 and r["peak_mb"] > 0 for r in measured)
    assert (results / "time_vs_n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_repeated_runs_keep_one_row_per_tool_and_say_so(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--repeat", "2", "--tools",
         "floor,engine", "--results", str(results), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("N=12     engine") == 2  # measured twice, round after round
    measured = json.loads((results / "results.json").read_text())
    assert measured["repeat"] == 2
    assert [r["tool"] for r in measured["rows"]] == ["floor", "engine"]
    assert "the least CPU time of 2" in (results / "results.md").read_text()


def test_the_corpus_is_distinct_instances(tmp_path: Path):
    paths = corpus.build(tmp_path, 2 * len(corpus.SOURCES))
    datasets = [pydicom.dcmread(p) for p in paths]
    assert len({d.SOPInstanceUID for d in datasets}) == len(paths)
    assert len({d.SeriesInstanceUID for d in datasets}) == len(paths)
    assert len({d.PatientID for d in datasets}) == len(paths) // corpus.INSTANCES_PER_PATIENT
    assert {d.Modality for d in datasets} >= {"CT", "MR", "SR", "SEG", "NM", "RTPLAN",
                                               "RTDOSE", "ECG"}

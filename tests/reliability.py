"""Recompute the figures of docs/reliability.md: `make reliability` (or `python
tests/reliability.py --write`) replaces the text between its markers; without --write the
figures go to stdout. The same inputs and checks as tests/test_hostile.py and
tests/test_security.py, counted instead of asserted."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pydicom
from dicom_factory import KEY, base_dataset, to_bytes
from hostile_inputs import WRITTEN, by_kind, hostile_inputs, truncations
from test_hostile import (
    BOMB_ADDRESS_SPACE,
    PATH_UIDS,
    WORKER_PROCESSES,
    _with_uid,
    assert_clean_output,
    bomb_under_address_limit,
    measured,
    outcome,
)
from test_security import CORPUS, debug_run, found_in, identifying_tokens, key_forms, searchable

from deid.beam.paths import STAGING
from deid.engine import Output, deidentify_bytes
from deid.engine.files import MAX_INFLATED_BYTES
from deid.profile import ProfileError, load_profiles
from pipelines import deidentify
from pipelines.deidentify import sample_files

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
SECRET = "reliability-report-0123456789abcdef"


def clean(result) -> bool:
    """A written instance parses and holds none of the factory's identifying values."""
    try:
        if isinstance(result, Output):
            assert_clean_output(result)
    except AssertionError:
        return False
    return True


def kinds_table(profile) -> list[str]:
    rows = ["| kind | input | bytes | expected | outcome | peak MiB | ms |",
            "|---|---|---:|---|---|---:|---:|"]
    for hostile in hostile_inputs():
        result, peak, seconds = measured(hostile.data, profile)
        got = outcome(result)
        mark = "" if got == hostile.expected and clean(result) else " **MISMATCH**"
        rows.append(f"| {hostile.kind} | {hostile.what} | {len(hostile.data):,} | "
                    f"{hostile.expected} | {got}{mark} | {peak / (1 << 20):.1f} | "
                    f"{seconds * 1000:.0f} |")
    return rows


def bomb_table() -> list[str]:
    rows = ["| RLIMIT_AS | inflation cap | outcome | peak RSS MiB |", "|---:|---:|---|---:|"]
    for cap, shown in ((None, f"{MAX_INFLATED_BYTES >> 20} MiB"), (1 << 40, "none (off)")):
        reason, peak_kib = bomb_under_address_limit(BOMB_ADDRESS_SPACE, cap)
        rows.append(f"| {BOMB_ADDRESS_SPACE >> 20} MiB | {shown} | {reason} | "
                    f"{peak_kib >> 10} |")
    return rows


def truncation_table(profile) -> list[str]:
    cases = [("undefined_length_sequence (factory)", by_kind("undefined_length_sequence").data,
              1),
             ("CT_small.dcm (pydicom)",
              Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes(), 31),
             ("rtplan.dcm (pydicom)",
              Path(pydicom.data.get_testdata_file("rtplan.dcm")).read_bytes(), 1)]
    rows = ["| file | bytes | stride | cuts | outcomes | crashes | unclean outputs |",
            "|---|---:|---:|---:|---|---:|---:|"]
    for name, data, stride in cases:
        seen: Counter = Counter()
        crashes = unclean = 0
        offsets = truncations(data, stride)
        for offset in offsets:
            try:
                result = deidentify_bytes(data[:offset], profile, KEY)
            except Exception:
                crashes += 1
                continue
            seen[outcome(result)] += 1
            unclean += not clean(result)
        found = ", ".join(f"{reason} {count}" for reason, count in seen.most_common())
        rows.append(f"| {name} | {len(data):,} | {stride} | {len(offsets):,} | {found} | "
                    f"{crashes} | {unclean} |")
    return rows


def pipeline_table(folder: Path) -> list[str]:
    inputs = folder / "in"
    inputs.mkdir()
    expected = {}
    for hostile in hostile_inputs():
        (inputs / f"{hostile.kind}.dcm").write_bytes(hostile.data)
        expected[str(inputs / f"{hostile.kind}.dcm")] = hostile.expected
    uids = folder / "uids"
    uids.mkdir()
    for number, uid in enumerate(PATH_UIDS):
        data = _with_uid(to_bytes(base_dataset()), uid.encode())
        (inputs / f"uid-{number}.dcm").write_bytes(data)
        (uids / f"uid-{number}.dcm").write_bytes(data)
    output = folder / "out"
    start = time.perf_counter()
    report = deidentify.run(deidentify.plan(["--input", str(inputs), "--output", str(output),
                                             "--profile", "basic"]))
    seconds = time.perf_counter() - start
    workers = deidentify.run(deidentify.plan([
        "--input", str(inputs), "--output", str(folder / "workers"), "--profile", "basic",
        *WORKER_PROCESSES]))
    kept = deidentify.run(deidentify.plan([
        "--input", str(uids), "--output", str(folder / "kept"), "--profile", "basic",
        "--profile", "retain-uids"]))
    records = [json.loads(line) for line in
               (folder / "out-quarantine" / "quarantine.jsonl").read_text().splitlines()]
    reasons = {r["input"]: r["reason"] for r in records}
    agree = sum(reasons.get(path, WRITTEN) == reason for path, reason in expected.items())
    outside = [p for p in folder.rglob("*") if p.is_file() and p.name != "quarantine.jsonl"
               and not any(p.is_relative_to(folder / name)
                           for name in ("in", "out", "workers", "uids", "kept"))]
    by_reason = ", ".join(f"{k} {v}" for k, v in sorted(report.by_reason.items()))
    return [
        "| figure | value |", "|---|---|",
        f"| inputs read | {report.read} ({len(expected)} kinds, {len(PATH_UIDS)} hostile UIDs) |",
        f"| written + quarantined | {report.written} + {report.quarantined} |",
        f"| read = written + quarantined | {report.consistent} |",
        f"| quarantine records, inputs recorded twice | {len(records)}, "
        f"{len(records) - len(reasons)} |",
        f"| kinds whose outcome is the expected one | {agree} of {len(expected)} |",
        f"| quarantined by reason | {by_reason} |",
        f"| staging folder left | {(output / STAGING).exists()} |",
        f"| files outside output and quarantine | {len(outside)} |",
        f"| wall time | {seconds:.1f} s |",
        f"| the same inputs with 2 worker processes: metrics identical | "
        f"{workers.counts == report.counts} |",
        f"| the {len(PATH_UIDS)} hostile UIDs kept by `retain-uids`: written, quarantined by "
        f"reason | {kept.written}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(kept.by_reason.items())) + " |",
    ]


def leak_table(folder: Path) -> list[str]:
    if not CORPUS.is_dir():
        return ["(../shared/corpus is not there: the leak scan was not run)"]
    inputs = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file()) + sample_files()
    tokens = identifying_tokens(inputs, load_profiles(["basic"]))
    searched = sorted(t for t in tokens if searchable(t, [*inputs, str(folder)]))
    code, texts = debug_run(folder / "out", SECRET)
    leaks = {where: len(found_in(searched, text)) for where, text in texts.items()}
    binary = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    key_hits = sum(form in text for text in texts.values() for form in key_forms(SECRET))
    key_hits += sum(form.encode() in binary for form in key_forms(SECRET))
    rows = ["| figure | value |", "|---|---|",
            f"| inputs (corpus + pydicom's test files) | {len(inputs)} (exit code {code}) |",
            f"| identifying tokens / searched (the rule in tests/test_security.py) | "
            f"{len(tokens):,} / {len(searched):,} |"]
    rows += [f"| {where}: {len(texts[where]):,} characters, values found | {count} |"
             for where, count in leaks.items()]
    rows.append(f"| the key (text, hex, base64, bytes) in texts and written files | {key_hits} |")
    return rows


def yaml_table() -> list[str]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "ids.csv").write_text("original,code\nA,B\n")
        (folder / "sub").mkdir()
        cases = {
            "python/object/apply tag": "rules:\n  - !!python/object/apply:os.system ['true']\n",
            "python/name tag": "rules:\n  - !!python/name:os.system\n",
            "billion laughs (10**9 values)": _laughs_text(),
            "recursive alias": "rules: &r [*r]\n",
            "nesting 20000 deep": "rules: " + "[" * 20000 + "]" * 20000 + "\n",
            "lookup ../ids.csv": "rules:\n  - {attribute: PatientID, action: lookup, "
                                 "file: ../ids.csv}\n",
            "lookup /dev/zero": "rules:\n  - {attribute: PatientID, action: lookup, "
                                "file: /dev/zero}\n",
        }
        rows = ["| profile | result | peak MiB |", "|---|---|---:|"]
        for what, body in cases.items():
            path = folder / "sub" / "p.yaml"
            path.write_text("name: p\n" + body)
            tracemalloc.start()
            try:
                load_profiles([str(path)])
                result = "**loaded**"
            except ProfileError as exc:
                result = "ProfileError: " + re.sub(r"^.*?:\d+:\d+: ", "", str(exc).splitlines()[0])
            peak = tracemalloc.get_traced_memory()[1] / (1 << 20)
            tracemalloc.stop()
            rows.append(f"| {what} | {result.split(' (fix:')[0]} | {peak:.1f} |")
    return rows


def _laughs_text() -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)]
    return "\n".join(lines) + "\nrules: [{attribute: PatientID, action: X, note: *l9}]\n"


def report() -> str:
    os.environ["DEID_SECRET"] = SECRET
    profile = load_profiles(["basic"])
    with tempfile.TemporaryDirectory() as pipeline_dir, \
            tempfile.TemporaryDirectory() as leak_dir:
        sections = [
            ("Inputs by kind", "one call of `deidentify_bytes` each, profile `basic`; peak is "
             "tracemalloc's (Python allocations, zlib's buffers included)", kinds_table(profile)),
            ("The deflate bomb under a hard memory limit", "a fresh process limited by "
             "RLIMIT_AS (every allocation counts); without the guard, pydicom's one-call "
             "inflation runs out of memory", bomb_table()),
            ("Truncated anywhere", "every cut is rejected or written as a clean, parseable "
             "instance", truncation_table(profile)),
            ("One pipeline run over every kind", "FnApiRunner, `--profile basic`",
             pipeline_table(Path(pipeline_dir))),
            ("Leaks", "a `deid run` in its own process, every logger at DEBUG, `-W default`, "
             "over ../shared/corpus and pydicom's files",
             leak_table(Path(leak_dir))),
            ("Hostile profiles", "each loaded with `load_profiles`", yaml_table()),
        ]
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = [f"Recomputed by `make reliability` (pydicom {pydicom.__version__}, Python "
           f"{sys.version.split()[0]}); the whole report peaked at {peak_rss:.0f} MiB RSS."]
    for title, note, rows in sections:
        out += ["", f"### {title}", "", f"{note[0].upper()}{note[1:]}.", "", *rows]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()
    text = report()
    if not args.write:
        print(text)
        return 0
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + doc[end:])
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

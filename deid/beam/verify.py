"""Pipeline verification (--verify): each instance checked against its original before it is
committed, and the run checked for consistency, into `<output>/verify_report.json`.

An instance that fails is quarantined as `verification_failed`, never written (fail closed).
The consistency combine holds digests of original and new identifiers in memory only; the
report holds counts, check names, tags and output file names, never a value.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid.beam import metrics, paths
from deid.engine import Output, Rejection
from deid.engine.core import Rejected
from deid.engine.stream import without_pixel_data
from deid.profile import Profile
from deid.verify import Consistency, Unverifiable, verify_pair
from deid.verify.sets import REPORT as REPORT_NAME

VERIFICATION_FAILED = "verification_failed"
FINDINGS = "verify_findings"  # the counter that makes the run exit 1
_SHOWN = 10  # findings named in a quarantine message


@dataclass(frozen=True)
class Verified:
    """One instance's verification: its output file (relative, new UIDs only) when it passed,
    the names and places of its findings when it failed, and the identifier digests."""

    output: str | None
    findings: tuple[tuple[str, str], ...] = ()
    mappings: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)


_UNVERIFIABLE = Verified(None, (("pairing/unverifiable", "the pair"),))


def verify_output(original: bytes, out: Output, profile: Profile
                  ) -> tuple[Output | Rejection, Verified]:
    """The output, or a `verification_failed` rejection naming the checks and tags."""
    try:
        result = verify_pair(original, out.data, profile)
    except Unverifiable as exc:
        return (Rejection(VERIFICATION_FAILED, f"verification failed: {exc}"),
                _UNVERIFIABLE)
    if result.findings:
        named = [(f.name, f.where) for f in result.findings]
        shown = "; ".join(f"{name} at {where}" for name, where in named[:_SHOWN])
        more = f"; and {len(named) - _SHOWN} more" if len(named) > _SHOWN else ""
        return (Rejection(VERIFICATION_FAILED, f"verification failed: {shown}{more}"),
                Verified(None, tuple(named)))
    name = f"{out.study_instance_uid}/{out.series_instance_uid}/{out.sop_instance_uid}.dcm"
    return out, Verified(name, (), tuple(result.mappings))


def verify_streamed(original, staged: str, out: Output, profile: Profile
                    ) -> tuple[Output | Rejection, Verified]:
    """verify_output for an instance streamed into its staging file: the original (an open
    binary file) and the staged output are compared without their pixel data element, which
    the leak search skips anyway; every other element, those after the pixel data included,
    is checked."""
    try:
        with original:
            original_elements = without_pixel_data(original)
        with FileSystems.open(staged, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            written_elements = without_pixel_data(f)
    except Exception as exc:  # Rejected, or a read failure: fail closed
        reason = exc.reason if isinstance(exc, Rejected) else type(exc).__name__
        return (Rejection(VERIFICATION_FAILED, f"verification failed: cannot read the files "
                          f"({reason})"), _UNVERIFIABLE)
    return verify_output(original_elements, replace(out, data=written_elements), profile)


class VerifyCombineFn(beam.CombineFn):
    """Verified records -> the run's report (a dict), consistency included."""

    def __init__(self, profiles: tuple[str, ...]):
        super().__init__()
        self._profiles = profiles

    def create_accumulator(self):
        return Counter(), Counter(), Consistency()

    def add_input(self, accumulator, record: Verified):
        counts, checks, consistency = accumulator
        counts["verified"] += 1
        if record.output is None:
            counts["failed"] += 1
            checks.update(name for name, _ in record.findings)
        else:
            consistency.add(record.output, list(record.mappings))
        return accumulator

    def merge_accumulators(self, accumulators):
        counts, checks, consistency = self.create_accumulator()
        for other_counts, other_checks, other in accumulators:
            counts.update(other_counts)
            checks.update(other_checks)
            consistency.merge(other)
        return counts, checks, consistency

    def extract_output(self, accumulator):
        counts, checks, consistency = accumulator
        set_findings = consistency.findings()
        return {"profiles": list(self._profiles),
                "ok": not counts["failed"] and not set_findings,
                "instances_verified": counts["verified"],
                "instances_failed": counts["failed"],
                "by_check": dict(sorted(checks.items())),
                "set_findings": [f.as_json() for f in set_findings]}


def write_report(report: dict, path: str) -> None:
    """Write the report; count its findings so the run exits 1 on any."""
    metrics.counter(FINDINGS).inc(report["instances_failed"] + len(report["set_findings"]))
    with FileSystems.create(path, mime_type="application/json",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write((json.dumps(report, indent=2) + "\n").encode("utf-8"))


class WriteVerifyReport(beam.PTransform):
    """Verified records in; `<folder>/verify_report.json` out (written even when empty)."""

    def __init__(self, folder: str, profiles: tuple[str, ...]):
        super().__init__()
        self._path = paths.join(folder, REPORT_NAME)
        self._profiles = profiles

    def expand(self, records):
        return (records
                | "CombineReport" >> beam.CombineGlobally(VerifyCombineFn(self._profiles))
                | "WriteReport" >> beam.Map(write_report, self._path))

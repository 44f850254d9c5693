"""The run ledger: which inputs are done, so that a rerun skips them and a collection grows
run by run without merging silently.

Why a ledger and not the manifest or Beam's deduplication: the manifest holds no input paths
(they identify), so it cannot say which input made which instance; Beam deduplicates within
one pipeline, not across runs; and deciding "done" before reading an input is what makes a
rerun cheap (no input is opened twice). The ledger lives in `<quarantine>/ledger/`, beside
the originals it names, never in the release.

Entries are JSON lines, one per input with an outcome: `{"input", "run", "written": manifest
row}` or `{"input", "run", "quarantined": {"reason", "message"[, "copy"]}}`. Workers append
them as they go, in small files under `ledger/<run id>/` flushed every few hundred entries or
seconds, written only once the instance is in place (and its crosswalk rows, with linkage,
are in `<linkage>/pending/<run id>/`), so that after a crash every entry is true. The end of
a run merges every entry (the latest per input wins), writes the manifest, the quarantine
records and the crosswalks from them, and compacts the ledger into `ledger/ledger.jsonl`.
"""

from __future__ import annotations

import json
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid.beam import metrics, paths
from deid.beam.linkage import HEADER, csv_line
from deid.beam.records import DUPLICATE, INTERNAL_ERROR, OUTPUT_ERROR, Quarantined, Staged

COMPACTED = "ledger.jsonl"
# Outcomes worth another try on a rerun: the cause may have been transient.
RETRY = frozenset({OUTPUT_ERROR, INTERNAL_ERROR})
FLUSH_ENTRIES, FLUSH_SECONDS = 200, 5.0
ALREADY_WRITTEN = "already_written"
ALREADY_QUARANTINED = "already_quarantined"
COLLECTION_WRITTEN = "collection_written"
COLLECTION_QUARANTINED = "collection_quarantined"


def written_entry(staged: Staged, run_id: str) -> dict:
    return {"input": staged.input, "run": run_id, "written": staged.manifest_row()}


def quarantined_entry(record: Quarantined, run_id: str) -> dict:
    outcome = {"reason": record.reason, "message": record.message}
    if record.copy is not None:
        outcome["copy"] = record.copy
    return {"input": record.input, "run": run_id, "quarantined": outcome}


def is_done(entry: dict) -> bool:
    """An input whose outcome a rerun keeps (a written instance, or a lasting rejection)."""
    return "written" in entry or entry["quarantined"]["reason"] not in RETRY


def latest(entries) -> dict:
    """Of one input's entries, the last run's (written before quarantined within a run)."""
    return max(entries, key=lambda e: (e["run"], "written" in e))


def _create(path: str):
    return FileSystems.create(path, mime_type="text/plain",
                              compression_type=CompressionTypes.UNCOMPRESSED)


class RecordFn(beam.DoFn):
    """Append this run's outcomes to the ledger, in files of up to FLUSH_ENTRIES entries or
    FLUSH_SECONDS. With ``pending`` (a linkage folder's pending/<run id>), the crosswalk rows
    of written instances are written first, so an entry never exists without its rows."""

    def __init__(self, folder: str, run_id: str, kind: str, pending: str | None = None):
        super().__init__()
        self._folder, self._run_id, self._kind, self._pending = folder, run_id, kind, pending

    def start_bundle(self):
        self._entries: list[str] = []
        self._uids: list[str] = []
        self._patient_ids: list[str] = []
        self._since = time.monotonic()

    def process(self, element):
        if isinstance(element, Staged):
            self._entries.append(json.dumps(written_entry(element, self._run_id),
                                            ensure_ascii=False))
            if self._pending is not None:
                self._uids.extend(csv_line(pair) for pair in element.uid_map)
                if element.patient_ids:
                    self._patient_ids.append(csv_line(element.patient_ids))
        else:
            self._entries.append(json.dumps(quarantined_entry(element, self._run_id),
                                            ensure_ascii=False))
        if len(self._entries) >= FLUSH_ENTRIES or \
                time.monotonic() - self._since >= FLUSH_SECONDS:
            self._flush()
        yield element

    def finish_bundle(self):
        self._flush()

    def _flush(self) -> None:
        if not self._entries:
            return
        name = f"{self._kind}-{uuid.uuid4().hex}"
        if self._pending is not None:
            for kind, lines in (("uid_mapping", self._uids), ("patid_mapping", self._patient_ids)):
                if lines:
                    _write_lines(paths.join(self._pending, f"{kind}-{name}.csv"),
                                 [HEADER, *lines])
        _write_lines(paths.join(self._folder, self._run_id, name + ".jsonl"), self._entries)
        self._entries, self._uids, self._patient_ids = [], [], []
        self._since = time.monotonic()


def _write_lines(path: str, lines: list[str]) -> None:
    paths.ensure_parent(path)
    with _create(path) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


def read_entries(pipeline, files: list[str], label: str):
    """The entries of ledger files listed before the run started."""
    return (pipeline
            | f"{label}Files" >> beam.Create(files)
            | f"{label}Read" >> beam.io.ReadAllFromText()
            | f"{label}Parse" >> beam.Map(json.loads))


def latest_per_input(entries, label: str):
    return (entries
            | f"{label}ByInput" >> beam.Map(lambda e: (e["input"], e))
            | f"{label}Group" >> beam.GroupByKey()
            | f"{label}Latest" >> beam.MapTuple(lambda _, group: latest(group)))


class ReconcileFn(beam.DoFn):
    """The entries whose instance is one output path: the earliest run's is the written one
    (a later run does not replace an instance with other bytes: CommitFn's keep_existing; the
    same bytes are the same instance); any other becomes a duplicate_instance record, as
    within a run, and if this run wrote it, it counts as quarantined by this run. Counts the
    collection's instances."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def setup(self):
        self._collection = metrics.counter(COLLECTION_WRITTEN)
        self._written = metrics.counter(metrics.WRITTEN)
        self._quarantined = metrics.counter(metrics.QUARANTINED)
        self._duplicates = metrics.counter(metrics.REASON_PREFIX + DUPLICATE)

    def process(self, element):
        _, group = element
        ordered = sorted(group, key=lambda e: (e["run"], e["input"]))
        winner = ordered[0]
        self._collection.inc()
        yield winner
        for entry in ordered[1:]:
            if entry["run"] == self._run_id:
                self._written.dec()
                self._quarantined.inc()
                self._duplicates.inc()
            yield {"input": entry["input"], "run": entry["run"], "quarantined": {
                "reason": DUPLICATE,
                "message": f"same SOP Instance UID as {winner['input']}, which was written"}}


class MergeCollection(beam.PTransform):
    """Previous entries (latest per input) and this run's entries in; the collection's
    sidecars out: `<collection>/manifest.jsonl|parquet` (via ``write_manifest``),
    `<quarantine>/quarantine.jsonl` and the compacted `<ledger>/ledger.jsonl`."""

    def __init__(self, ledger: str, quarantine: str, write_manifest, run_id: str):
        super().__init__()
        self._ledger, self._quarantine, self._run_id = ledger, quarantine, run_id
        self._write_manifest = write_manifest

    def expand(self, entries):
        merged = latest_per_input(entries, "Merged")
        written = (merged
                   | "Written" >> beam.Filter(lambda e: "written" in e)
                   | "ByOutput" >> beam.Map(lambda e: (e["written"]["output_path"], e))
                   | "GroupByOutput" >> beam.GroupByKey()
                   | "Reconcile" >> beam.ParDo(ReconcileFn(self._run_id)))
        final = ((written, merged | "Quarantined" >> beam.Filter(lambda e: "written" not in e))
                 | "Final" >> beam.Flatten())
        rows = final | "Rows" >> beam.FlatMap(lambda e: [e["written"]] if "written" in e else [])
        _ = rows | "WriteManifest" >> self._write_manifest
        _ = (final
             | "Records" >> beam.FlatMap(_quarantine_line)
             | "WriteQuarantine" >> beam.io.WriteToText(
                 paths.join(self._quarantine, "quarantine"), file_name_suffix=".jsonl",
                 num_shards=1, shard_name_template=""))
        return (final
                | "LedgerLines" >> beam.Map(lambda e: json.dumps(e, ensure_ascii=False))
                | "WriteLedger" >> beam.io.WriteToText(
                    paths.join(self._ledger, "ledger"), file_name_suffix=".jsonl",
                    num_shards=1, shard_name_template=""))


def _quarantine_line(entry: dict):
    if "written" in entry:
        return
    metrics.counter(COLLECTION_QUARANTINED).inc()
    record = {"input": entry["input"], **entry["quarantined"]}
    yield json.dumps(record, ensure_ascii=False)

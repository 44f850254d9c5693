"""De-identify DICOM instances from folders or buckets with Apache Beam.

    python -m pipelines.deidentify --input IN --output OUT --profile basic [beam options]
    deid run --input IN --output OUT --profile basic [beam options]

This module only checks the command line and wires it to the transforms in deid.beam; see
"Running the pipeline" in README.md. Exit codes: 0 every input written (or quarantine allowed),
1 something was quarantined (or a verification finding), 2 usage, profile, key or preflight
error, 3 the run failed (a DICOMweb store down included), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    _BeamArgumentParser,
)

from deid.beam import (
    DeidentifyInstances,
    DeidentifyOptions,
    KeySource,
    ReadInstances,
    Streaming,
    WriteInstances,
    WriteLinkage,
    WriteMetadata,
    logs,
    metadata,
    metrics,
    paths,
)
from deid.beam import collection as coll
from deid.beam.dicomweb import (
    CREDENTIALS,
    ReadDicomweb,
    Store,
    StoreInstances,
    StoreUnavailable,
    is_dicomweb,
)
from deid.beam.ignore import Ignore
from deid.beam.ledger import (
    ALREADY_QUARANTINED,
    ALREADY_WRITTEN,
    COLLECTION_QUARANTINED,
    COLLECTION_WRITTEN,
    COMPACTED,
    MergeCollection,
    RecordFn,
    is_done,
    latest_per_input,
    quarantined_entry,
    read_entries,
    written_entry,
)
from deid.beam.manifest import WriteManifestRows
from deid.beam.options import add_own_options
from deid.beam.paths import UsageError
from deid.beam.preflight import check_folders
from deid.beam.progress import ProgressLine
from deid.beam.quarantine import PrepareQuarantine
from deid.beam.runner import is_local, make_runner, resolve_runner, runner_name
from deid.beam.verify import FINDINGS, REPORT_NAME, WriteVerifyReport
from deid.beam.worker import stop_workers
from deid.keys import KeyUnavailable
from deid.profile import Profile, ProfileError, builtin_names, load_profiles
from deid.spelling import respell, unknown_message

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_LOG = logging.getLogger("deid.run")

DESCRIPTION = """\
De-identify every DICOM file under the inputs with PS3.15 profiles, writing
<output>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm (new UIDs), a manifest
(manifest.jsonl, manifest.parquet), every attribute of each written instance for SQL
(metadata.parquet), a quarantine record for every input not written, and with
--linkage_output the crosswalks. The key comes from $DEID_SECRET or --secret_file."""

EPILOG = """\
Every standard Beam option passes through: --runner (default: the local FnApiRunner; Beam's
runner names, or package.module.Class whose options are then known too; not DaskRunner, which
loses sinks and metrics), --direct_running_mode, --direct_num_workers, --project, --region,
--temp_location, --s3_endpoint_url, --job_endpoint, --flink_master, ...

exit codes: 0 all inputs written (or quarantine allowed), 1 inputs quarantined or a
verification finding (--verify), 2 usage, profile, key or preflight error (an output that is
a file or not writable), 3 the run failed (a DICOMweb store down included), 130 interrupted
(Ctrl-C). DEID_DEBUG=1 shows the traceback of a failure."""


def sample_files() -> list[str]:
    """The DICOM test files inside the installed pydicom (its data/test_files folder): only
    regular files, no Python modules. Read from the package folder, never downloaded."""
    import pydicom.data

    root = Path(pydicom.data.__file__).parent / "test_files"
    return sorted(str(p) for p in root.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc")
                  and "__pycache__" not in p.parts)


@dataclass
class Plan:
    """A validated command line: what the pipeline will do."""

    options: PipelineOptions
    patterns: list[str]
    output: str
    quarantine: str
    # Where the manifest (and the verify report) go: the output folder, or for an output that
    # is not a folder (a DICOMweb store) the folder --manifest_output names.
    manifest: str
    linkage: str | None
    profile: Profile
    key_source: KeySource
    allow_quarantine: bool
    quarantine_copy: bool
    stream_threshold: int  # bytes: larger inputs are streamed
    verify: bool = False
    prefer_duplicate: str = "smallest-path"  # deid.beam.write.PREFER
    sources: tuple[Store, ...] = ()  # DICOMweb stores read (QIDO-RS queries)
    sink: Store | None = None  # the DICOMweb store written instead of a folder
    ignore: Ignore = field(default_factory=Ignore)
    found: int = 0  # files the inputs match, ignored ones included
    ignored: int = 0
    identity: coll.Identity | None = None  # key fingerprint, profiles, edition
    new_version: bool = False
    version: int = 1  # of the collection in the output
    ledger_files: list[str] = field(default_factory=list)  # read: inputs done before
    obsolete: list[str] = field(default_factory=list)  # deleted once this run has finished
    linkage_previous: list[str] = field(default_factory=list)  # crosswalk rows merged
    metadata_previous: str | None = None  # metadata.parquet of the collection so far
    unfinished: list[dict] = field(default_factory=list)  # records of runs this one resumes
    # When every input is done and the collection is complete: its counts; no pipeline runs.
    done_before: dict[str, int] | None = None
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S-")
                        + uuid.uuid4().hex[:8])


def _beam_parser() -> _BeamArgumentParser:
    """A parser of every option `deid run` takes: ours and every Beam option class's."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def find_inputs(patterns: list[str], ignore: Ignore) -> tuple[int, list[str]]:
    """(files found, those not ignored) for the start line, the progress total and a rerun
    with nothing to do: a listing, as Beam's own match will make; no file is opened."""
    found: set[str] = set()
    for pattern in patterns:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception:  # a pattern matching nothing
            continue
        found.update(m.path for m in matched
                     if paths.is_remote(m.path) or not os.path.isdir(m.path))
    return len(found), [path for path in found if not ignore(path)]


def help_text() -> str:
    parser = argparse.ArgumentParser(prog="deid run", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_own_options(parser)
    return parser.format_help()


def plan(argv: Sequence[str]) -> Plan:
    """Check the command line, the profiles and the key before anything runs.
    Raises UsageError, ProfileError or KeyUnavailable."""
    resolve_runner(argv)  # first: its options must be known to the parser
    parser = _beam_parser()
    known = [s for action in parser._actions for s in action.option_strings]
    argv = respell(argv, known)  # Beam's options in either spelling too
    try:
        # What no option class recognizes is an error: Beam would drop it silently, and a
        # mistyped --secret_file would quietly fall back to $DEID_SECRET.
        _, unknown = parser.parse_known_args(argv)
    except SystemExit:  # argparse has printed what is wrong (an option without its value)
        raise UsageError("see `deid run --help`") from None
    if unknown:
        raise UsageError(f"{unknown_message(unknown, known)} (see `deid run --help`)")
    options = PipelineOptions(list(argv))
    own = options.view_as(DeidentifyOptions)
    local = is_local(options)
    dataflow = runner_name(options) == "DataflowRunner"

    if not own.output:
        raise UsageError("--output FOLDER is required")
    sources, sink = _stores(own, local)
    specs = [spec for spec in own.input or [] if not is_dicomweb(spec)]
    if own.sample:
        if not local:
            raise UsageError("--sample reads files on this machine: use a local runner")
        specs += sample_files()
    if not specs and not sources:
        raise UsageError("nothing to read: pass --input PATH (repeatable) or --sample")
    if own.quarantine_copy and sources:
        raise UsageError("--quarantine_copy copies files: the originals read from a DICOMweb "
                         "store stay there")
    if own.stream_threshold_mb < 0:
        raise UsageError("--stream_threshold_mb must be 0 or more")
    if not own.profile:
        raise UsageError("no profile: pass --profile NAME or a YAML file (built-in: "
                         f"{', '.join(builtin_names())})")

    FileSystems.set_options(options)  # bucket inputs and a secret file in a bucket
    output = sink.label if sink else paths.normalize(own.output)
    # A DICOMweb output's manifest goes to --manifest_output, which then plays the output
    # folder's part for the checks below: nothing re-identifying inside it.
    manifest = paths.normalize(own.manifest_output) if sink else output
    flag = "--manifest_output" if sink else "--output"
    quarantine = (paths.normalize(own.quarantine_output) if own.quarantine_output
                  else paths.default_quarantine(manifest))
    linkage = paths.normalize(own.linkage_output) if own.linkage_output else None
    if paths.is_within(quarantine, manifest):
        raise UsageError(f"--quarantine_output is inside {flag}: quarantined originals hold "
                         "identifying data and must stay out of the de-identified tree")
    if linkage and paths.is_within(linkage, manifest):
        raise UsageError(f"--linkage_output is inside {flag}: the crosswalks re-identify "
                         "and must stay out of the de-identified tree")
    if dataflow:
        local_paths = [p for p in (*specs, manifest, quarantine, linkage, own.secret_file)
                       if p and not paths.is_remote(p)]
        if local_paths:
            raise UsageError(f"Dataflow workers cannot see local paths ({local_paths[0]}): "
                             "use gs:// paths")

    patterns = [paths.input_pattern(spec) for spec in specs]
    probes = [(paths.join(manifest, "manifest.jsonl"), manifest),
              (paths.join(quarantine, "quarantine.jsonl"), quarantine),
              (paths.join(quarantine, "originals", "0", "f"), quarantine)]
    if not sink:
        probes.append((paths.output_path(output, "1", "2", "3"), output))
    if linkage:
        probes.append((paths.join(linkage, "uid_mapping.csv"), linkage))
    for pattern in patterns:
        for probe, folder in probes:
            if paths.matches(pattern, probe):
                raise UsageError(f"the input {pattern} would also read {folder}, written by "
                                 "this run: put the outputs elsewhere")

    profile = load_profiles(own.profile)

    secret_file = own.secret_file
    if secret_file and not paths.is_remote(secret_file):
        secret_file = paths.normalize(secret_file)
    key_source = KeySource.choose(secret_file, own.throwaway_key)
    if own.throwaway_key and key_source.kind != "throwaway":
        _LOG.warning("--throwaway_key ignored: the key comes from %s", key_source.describe())
    if key_source.kind == "throwaway" and not local:
        raise UsageError("--throwaway_key only works on a local runner (the key would have to "
                         "travel in the job graph): use --secret_file")
    if key_source.kind == "env" and dataflow:
        raise UsageError("Dataflow workers cannot see $DEID_SECRET: put the key in a bucket "
                         "object only the workers' service account can read and pass "
                         "--secret_file gs://...")
    if key_source.kind == "env" and not local and not dataflow:
        _LOG.warning("the key comes from $%s: the %s workers need it set where they run "
                     "(or pass --secret_file)", key_source.location, runner_name(options))
    key = key_source.resolve()  # fails here, not on the workers
    identity = coll.Identity.of(list(own.profile), profile, key)
    # Lookup tables go to the workers inside the profile: keyed by HMAC of the original
    # values, they carry no original identifier into the job graph.
    profile = profile.with_sealed_lookups(key)
    del key

    for store in (*sources, *([sink] if sink else [])):
        store.check()  # a store down or refusing us fails here (StoreUnavailable), not later

    ignore = Ignore(own.exclude or ())
    found, kept = find_inputs(patterns, ignore) if patterns else (0, [])
    ignored = found - len(kept)
    if patterns and not found:
        raise UsageError(f"no file found under {', '.join(patterns)}")
    if patterns and found == ignored and not sources:
        raise UsageError(f"all {found} files found are ignored (junk or --exclude): nothing "
                         "to de-identify")
    folders = [(flag, manifest), ("--quarantine_output", quarantine)]
    if linkage:
        folders.append(("--linkage_output", linkage))
    problems = check_folders(folders)
    if problems:
        raise UsageError("\n".join(problems))
    state = _collection_state(manifest, quarantine, linkage, identity, own.new_version, flag)
    if not (sources or own.verify):
        state["done_before"] = _all_done(kept, state, quarantine)

    return Plan(options=options, patterns=patterns, output=output, quarantine=quarantine,
                manifest=manifest, linkage=linkage, sources=tuple(sources), sink=sink,
                profile=profile, key_source=key_source,
                allow_quarantine=own.allow_quarantine, quarantine_copy=own.quarantine_copy,
                stream_threshold=own.stream_threshold_mb << 20, verify=own.verify,
                prefer_duplicate=own.prefer_duplicate, ignore=ignore, found=found,
                ignored=ignored, identity=identity, new_version=own.new_version, **state)


def _all_done(inputs: list[str], state: dict, quarantine: str) -> dict[str, int] | None:
    """The counts of a rerun with nothing to do, or None: every input the ledger's compacted
    file lists as done, and nothing of an earlier run left to merge or clean."""
    compacted = paths.join(quarantine, coll.LEDGER, COMPACTED)
    if state["ledger_files"] != [compacted] or state["obsolete"] or state["unfinished"]:
        return None
    entries = {entry["input"]: entry for entry in coll.read_jsonl(compacted)}
    counts = {ALREADY_WRITTEN: 0, ALREADY_QUARANTINED: 0}
    for path in inputs:
        entry = entries.get(path)
        if entry is None or not is_done(entry):
            return None
        counts[ALREADY_WRITTEN if "written" in entry else ALREADY_QUARANTINED] += 1
    written = sum(1 for e in entries.values() if "written" in e)
    counts.update({COLLECTION_WRITTEN: written, COLLECTION_QUARANTINED: len(entries) - written})
    return counts


def _collection_state(root: str, quarantine: str, linkage: str | None,
                      identity: coll.Identity, new_version: bool, flag: str) -> dict:
    """What the output already holds: refused if it holds something else than a collection,
    a collection made otherwise (unless new_version), or one another run is writing now."""
    lock = coll.read_json(coll.lock_path(quarantine))
    if coll.lock_is_live(lock):
        raise UsageError(f"another run (process {lock['pid']}) is writing {root} now")
    existing = coll.read_json(paths.join(root, coll.COLLECTION))
    version = 1
    if existing is None:
        if coll.holds_anything(root):
            raise UsageError(f"{flag} {root} holds files but no {coll.COLLECTION}: choose an "
                             "empty folder (or the folder of a collection)")
    else:
        differences = coll.Identity.from_json(existing).differences(identity)
        if differences and not new_version:
            raise UsageError(
                f"{flag} {root} holds a collection made with {' and '.join(differences)}: "
                "adding to it would mix two releases; pass --new_version to replace it with "
                "a new version, or choose another folder")
        version = int(existing.get("version", 1)) + (1 if new_version else 0)
    listed = [p for p in coll.list_files(paths.join(quarantine, coll.LEDGER))
              if p.endswith(".jsonl")]
    pending = coll.list_files(paths.join(linkage, coll.PENDING)) if linkage else []
    crosswalks = [p for p in (paths.join(linkage, f"{name}.csv")
                              for name in ("uid_mapping", "patid_mapping"))
                  if FileSystems.exists(p)] if linkage else []
    return {
        "version": version,
        "ledger_files": [] if new_version else listed,
        "obsolete": [p for p in listed if paths.basename(p) != COMPACTED] + pending,
        "linkage_previous": [] if new_version else crosswalks + pending,
        "metadata_previous": None if new_version or existing is None
        or not FileSystems.exists(paths.join(root, metadata.NAME))
        else paths.join(root, metadata.NAME),
        "unfinished": coll.unfinished(coll.previous_runs(root)),
    }


def _stores(own: DeidentifyOptions, local: bool) -> tuple[list[Store], Store | None]:
    """The DICOMweb stores among --input and --output. Raises UsageError."""
    try:
        sources = [Store.parse(spec) for spec in own.input or [] if is_dicomweb(spec)]
        sink = Store.parse(own.output, output=True) if is_dicomweb(own.output) else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if (sources or sink) and importlib.util.find_spec("dicomweb_client") is None:
        raise UsageError("DICOMweb needs dicomweb-client: pip install 'deid-pipeline[dicomweb]'")
    if sink and not own.manifest_output:
        raise UsageError("--output is a DICOMweb store: pass --manifest_output FOLDER for the "
                         "manifest (the quarantine goes beside it)")
    if sink and is_dicomweb(own.manifest_output):
        raise UsageError("--manifest_output is a folder or a bucket prefix, not a store")
    if own.manifest_output and not sink:
        raise UsageError("--manifest_output goes with a DICOMweb --output: an output folder "
                         "holds its own manifest")
    if sink and any(source.url == sink.url for source in sources):
        raise UsageError("--input and --output are the same DICOMweb store: a later run "
                         "would read the de-identified instances as inputs")
    credentials = [name for name in CREDENTIALS if os.environ.get(name)]
    if (sources or sink) and credentials and not local:
        _LOG.warning("DICOMweb credentials come from $%s: the workers need them set where "
                     "they run", " and $".join(credentials))
    return sources, sink


def _metadata_folder(plan: Plan) -> str:
    """Where this run's metadata.parquet goes: the collection's own, or beside it when the
    collection has one already (finish() merges them)."""
    if plan.metadata_previous is None:
        return plan.manifest
    return paths.join(plan.manifest, paths.STAGING, f"{plan.run_id}-metadata")


def build(pipeline: beam.Pipeline, plan: Plan) -> None:
    """The graph: read what the ledger does not say is done, de-identify, write; everything
    not written goes to the quarantine; every outcome to the ledger; the collection's manifest,
    quarantine records and crosswalks from the ledger's entries and this run's."""
    ledger = paths.join(plan.quarantine, coll.LEDGER)
    previous = latest_per_input(read_entries(pipeline, plan.ledger_files, "Ledger"),
                                "Previous")
    done = (previous
            | "Done" >> beam.Filter(is_done)
            | "DoneByInput" >> beam.Map(lambda e: (e["input"], e)))
    reads = []
    if plan.patterns:
        reads.append(pipeline | "ReadInstances" >> ReadInstances(plan.patterns, plan.ignore,
                                                                 done=done))
    if plan.sources:
        reads.append(pipeline | "ReadDicomweb" >> ReadDicomweb(
            list(plan.sources), spill=plan.stream_threshold, done=done))
    files = reads[0] if len(reads) == 1 else reads | "AllInputs" >> beam.Flatten()
    # Large inputs go straight into the staging folder WriteInstances commits from; STOW-RS
    # sends instances from memory.
    streaming = None if plan.sink else Streaming(paths.staging_dir(plan.output, plan.run_id),
                                                 plan.stream_threshold)
    deidentified = files | "DeidentifyInstances" >> DeidentifyInstances(
        plan.profile, plan.key_source, streaming=streaming, verify=plan.verify)
    if plan.sink:
        written = deidentified.instances | "StoreInstances" >> StoreInstances(
            plan.sink, linkage=plan.linkage is not None, prefer=plan.prefer_duplicate)
    else:
        written = deidentified.instances | "WriteInstances" >> WriteInstances(
            plan.output, plan.run_id, linkage=plan.linkage is not None,
            prefer=plan.prefer_duplicate, keep_existing=not plan.new_version)
    quarantined = ((deidentified.quarantine, written["quarantine"])
                   | "AllQuarantined" >> beam.Flatten()
                   | "PrepareQuarantine" >> PrepareQuarantine(plan.quarantine,
                                                              plan.quarantine_copy)
                   | "RecordQuarantined" >> beam.ParDo(RecordFn(ledger, plan.run_id,
                                                                "quarantined")))
    pending = paths.join(plan.linkage, coll.PENDING, plan.run_id) if plan.linkage else None
    instances = written["written"] | "RecordWritten" >> beam.ParDo(
        RecordFn(ledger, plan.run_id, "written", pending))
    run_id = plan.run_id
    current = ((instances | "WrittenEntries" >> beam.Map(written_entry, run_id),
                quarantined | "QuarantinedEntries" >> beam.Map(quarantined_entry, run_id))
               | "RunEntries" >> beam.Flatten())
    _ = ((previous, current)
         | "AllEntries" >> beam.Flatten()
         | "MergeCollection" >> MergeCollection(ledger, plan.quarantine,
                                                WriteManifestRows(plan.manifest),
                                                plan.run_id))
    _ = written["written"] | "WriteMetadata" >> WriteMetadata(_metadata_folder(plan))
    if plan.linkage:
        _ = written["linkage"] | "WriteLinkage" >> WriteLinkage(plan.linkage,
                                                                plan.linkage_previous)
    if plan.verify:
        _ = deidentified.verified | "WriteVerifyReport" >> WriteVerifyReport(
            plan.manifest, plan.profile.names)


@dataclass
class Report:
    """What a finished run did, from its Beam metrics, and what it cleaned up."""

    plan: Plan
    counts: dict[str, int]
    seconds: float
    state: str
    leftovers_removed: int = 0  # Beam's temporary files and staging files of earlier runs
    strays_removed: int = 0  # instances an interrupted run placed that no manifest row lists

    @property
    def read(self) -> int:
        return self.counts.get(metrics.READ, 0)

    @property
    def ignored(self) -> int:
        return self.counts.get(metrics.IGNORED, 0)

    @property
    def written(self) -> int:
        return self.counts.get(metrics.WRITTEN, 0)

    @property
    def quarantined(self) -> int:
        return self.counts.get(metrics.QUARANTINED, 0)

    @property
    def already_written(self) -> int:
        return self.counts.get(ALREADY_WRITTEN, 0)

    @property
    def already_quarantined(self) -> int:
        return self.counts.get(ALREADY_QUARANTINED, 0)

    @property
    def any_quarantined(self) -> bool:
        """Whether an input stands quarantined, by this run or an earlier one."""
        return bool(self.quarantined or self.already_quarantined)

    @property
    def by_reason(self) -> dict[str, int]:
        prefix = metrics.REASON_PREFIX
        return {name[len(prefix):]: count for name, count in sorted(self.counts.items())
                if name.startswith(prefix) and count}

    @property
    def verify_findings(self) -> int:
        return self.counts.get(FINDINGS, 0)

    @property
    def consistent(self) -> bool:
        return self.read == self.written + self.quarantined

    @property
    def finished(self) -> bool:
        return self.state.split(".")[-1] == "DONE"

    def exit_code(self) -> int:
        if not self.finished or not self.consistent:
            return EXIT_FAILED
        if self.verify_findings:
            return EXIT_QUARANTINED
        if self.any_quarantined and not self.plan.allow_quarantine:
            return EXIT_QUARANTINED
        return EXIT_OK


def _run_record(plan: Plan) -> coll.RunRecord:
    assert plan.identity is not None
    return coll.RunRecord(plan.manifest, {
        "run": plan.run_id, "status": coll.RUNNING, "tool": "deid-pipeline",
        "tool_version": coll.tool_version(), **plan.identity.as_json(),
        "collection_version": plan.version, "new_version": plan.new_version,
        "runner": _runner_label(plan.options), "started": coll.now(),
        "inputs": coll.pattern_summary(plan.patterns),
        "dicomweb_inputs": len(plan.sources), "files_found": plan.found,
        "files_ignored": plan.ignored, "resumes": [r["run"] for r in plan.unfinished]})


def prepare(plan: Plan) -> tuple[coll.RunRecord, int]:
    """Before the pipeline: take the collection (a lock beside the ledger), remove what
    interrupted runs left (Beam's temporary folders, staging folders), record the collection
    and this run. Returns the run record and the number of leftover files removed."""
    coll.write_json(coll.lock_path(plan.quarantine),
                    {"run": plan.run_id, **coll.lock_owner()})
    folders = [plan.manifest, plan.quarantine, *([plan.linkage] if plan.linkage else [])]
    removed = coll.remove_leftovers(folders)
    assert plan.identity is not None
    existing = coll.read_json(paths.join(plan.manifest, coll.COLLECTION))
    if existing is None or plan.new_version:
        coll.write_json(paths.join(plan.manifest, coll.COLLECTION), {
            "format": coll.FORMAT, "version": plan.version, "created_by_run": plan.run_id,
            "created": coll.now(), **plan.identity.as_json()})
    record = _run_record(plan)
    record.save()
    return record, removed


def _remove_strays(plan: Plan) -> int:
    """Instance files in the output that the (new) manifest does not list: placed by an
    interrupted run whose inputs this run did not read, or by the version this one replaced."""
    if plan.sink:
        return 0
    listed = {row["output_path"]
              for row in coll.read_jsonl(paths.join(plan.output, "manifest.jsonl"))}
    root = plan.output.rstrip("/") + "/"
    strays = [p for p in coll.list_files(plan.output)
              if p.startswith(root) and coll.is_instance_path(p[len(root):])
              and p[len(root):] not in listed]
    coll.delete_files(strays)
    return len(strays)


def finish(plan: Plan, report: Report, record: coll.RunRecord) -> None:
    """After the pipeline: on success, drop the ledger files merged into ledger.jsonl, the
    pending crosswalk rows, the strays of interrupted runs and of a replaced version; mark the
    runs this one resumed; record the run; release the collection."""
    if report.finished and report.consistent:
        ledger = paths.join(plan.quarantine, coll.LEDGER)
        this_run = coll.list_files(paths.join(ledger, plan.run_id))
        if plan.linkage:
            this_run += coll.list_files(paths.join(plan.linkage, coll.PENDING, plan.run_id))
        if plan.metadata_previous is not None:
            added = _metadata_folder(plan)
            if report.written:
                metadata.merge(plan.metadata_previous, paths.join(added, metadata.NAME))
            coll.delete_folder(added)
            coll.prune_empty(paths.join(plan.manifest, paths.STAGING))
        coll.delete_files(plan.obsolete + this_run)
        coll.prune_empty(ledger)
        if plan.linkage:
            coll.prune_empty(paths.join(plan.linkage, coll.PENDING))
        if plan.unfinished or plan.new_version:
            report.strays_removed = _remove_strays(plan)
        for earlier in plan.unfinished:
            coll.write_json(paths.join(plan.manifest, coll.RUNS, f"{earlier['run']}.json"),
                            {**earlier, "resumed_by": plan.run_id})
        record.data["leftovers_removed"] = report.leftovers_removed
        record.data["strays_removed"] = report.strays_removed
        record.end(coll.FINISHED, report.counts)
    else:
        record.end(coll.FAILED, report.counts)
    _release(plan)


def _release(plan: Plan) -> None:
    with contextlib.suppress(Exception):
        FileSystems.delete([coll.lock_path(plan.quarantine)])


# The runs of this process in progress: an interrupt that cannot wait records them.
_ACTIVE: list[tuple[Plan, coll.RunRecord]] = []


def run(plan: Plan, runner=None) -> Report:
    """Run the pipeline to the end, read its metrics, and keep the collection's records."""
    record, leftovers = prepare(plan)
    if plan.done_before is not None:  # the sidecars are the collection's already
        report = Report(plan=plan, counts={metrics.IGNORED: plan.ignored, **plan.done_before},
                        seconds=0.0, state="DONE", leftovers_removed=leftovers)
        finish(plan, report, record)
        return report
    _ACTIVE.append((plan, record))
    try:
        pipeline = beam.Pipeline(runner=runner or make_runner(plan.options),
                                 options=plan.options)
        build(pipeline, plan)
        start = time.monotonic()
        result = pipeline.run()
        state = result.wait_until_finish()
        seconds = time.monotonic() - start
        report = Report(plan=plan, counts=metrics.collect(result), seconds=seconds,
                        state=str(state), leftovers_removed=leftovers)
    except BaseException as exc:
        # Beam may wrap the KeyboardInterrupt of its bundle in an error of its own.
        interrupted = isinstance(exc, KeyboardInterrupt) or _SIGINT.is_set()
        record.end(coll.INTERRUPTED if interrupted else coll.FAILED)
        _release(plan)
        raise
    finally:
        _ACTIVE.remove((plan, record))
    finish(plan, report, record)
    return report


def _runner_label(options: PipelineOptions) -> str:
    name = runner_name(options)
    if name in ("DirectRunner", "FnApiRunner", "SwitchingDirectRunner"):
        direct = options.view_as(DirectOptions)
        return (f"the local FnApiRunner ({direct.direct_running_mode}, "
                f"{direct.direct_num_workers or 1} worker(s))")
    return name


def summary(report: Report) -> str:
    plan = report.plan
    seconds = max(report.seconds, 1e-9)
    mb_in = report.counts.get(metrics.BYTES_READ, 0) / 1e6
    mb_out = report.counts.get(metrics.BYTES_WRITTEN, 0) / 1e6
    lines = [
        f"deid run: {report.state.split('.')[-1].lower()} in {report.seconds:.1f} s on "
        f"{_runner_label(plan.options)}, key from {plan.key_source.describe()}",
        f"  ignored      {report.ignored:>7} files                   junk and --exclude",
        f"  already      {report.already_written:>7} written, "
        f"{report.already_quarantined} quarantined    by earlier runs (ledger)",
        f"  read         {report.read:>7} files  {mb_in:>9.2f} MB  "
        f"{report.read / seconds:.1f} files/s, {mb_in / seconds:.2f} MB/s",
        f"  written      {report.written:>7} files  {mb_out:>9.2f} MB  -> {plan.output}",
        f"  quarantined  {report.quarantined:>7} files                -> "
        f"{paths.join(plan.quarantine, 'quarantine.jsonl')}",
    ]
    lines += [f"    {reason:<28} {count:>7}" for reason, count in report.by_reason.items()]
    if plan.quarantine_copy and report.quarantined:
        lines.append(f"    originals copied to {paths.join(plan.quarantine, 'originals')}")
    lines.append(f"  collection   {report.counts.get(COLLECTION_WRITTEN, 0):>7} instances, "
                 f"{report.counts.get(COLLECTION_QUARANTINED, 0)} inputs quarantined "
                 f"(version {plan.version})")
    if report.leftovers_removed or report.strays_removed:
        lines.append(f"  cleaned up   {report.leftovers_removed} temporary and "
                     f"{report.strays_removed} stray file(s) of interrupted runs")
    lines.append(f"  manifest                                  -> "
                 f"{paths.join(plan.manifest, 'manifest.jsonl')}, manifest.parquet, "
                 f"{metadata.NAME}")
    lines.append(f"  run record                                -> "
                 f"{paths.join(plan.manifest, coll.RUNS, plan.run_id + '.json')}")
    lines.append("  linkage                                   -> " + (
        f"{paths.join(plan.linkage, 'uid_mapping.csv')}, patid_mapping.csv"
        if plan.linkage else "not written (no --linkage_output)"))
    if plan.verify:
        lines.append(f"  verified {report.verify_findings:>3} finding(s)                  -> "
                     f"{paths.join(plan.manifest, REPORT_NAME)}")
    code = report.exit_code()
    if not report.finished:
        why = f"the run did not finish ({report.state.split('.')[-1].lower()})"
    elif not report.consistent:
        why = "BUG: files read != written + quarantined"
    elif report.verify_findings:
        why = "verification found problems (see the report; failures are quarantined)"
    elif report.any_quarantined and plan.allow_quarantine:
        why = "quarantine allowed by --allow_quarantine"
    elif report.any_quarantined:
        why = "some inputs were quarantined (pass --allow_quarantine to accept that)"
    else:
        why = "every input was written"
    lines.append(f"  exit {code}: {why}")
    return "\n".join(lines)


INTERRUPTED = "deid run: interrupted; run the same command again to resume"
_SIGINT = threading.Event()  # set by Interrupt: the process-wide signal, seen by run()


class Interrupt:
    """Ctrl-C during a run: the first SIGINT silences logging and thread tracebacks (Beam
    logs the interrupted bundle at length) and raises KeyboardInterrupt in the main thread.
    Worker processes ignore SIGINT (deid.beam.worker) and end when the launcher is gone. If
    Beam has not unwound after GRACE seconds (it may wait for a worker that was still
    starting), or on a second Ctrl-C, the process ends at once, with the same line."""

    GRACE = 5.0

    def __init__(self):
        self.fired = False
        self._previous = None

    @staticmethod
    def _force() -> None:
        for plan, record in list(_ACTIVE):
            record.end(coll.INTERRUPTED)
            _release(plan)
        print(INTERRUPTED, file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    def _handle(self, signum, frame):
        if self.fired:
            self._force()
        self.fired = True
        _SIGINT.set()
        if not os.environ.get("DEID_DEBUG"):
            logging.disable(logging.CRITICAL)
        stop_workers()
        timer = threading.Timer(self.GRACE, self._force)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    def __enter__(self) -> Interrupt:
        _SIGINT.clear()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        # Beam's threads print the traceback of a worker that died; the run's failure is
        # reported in one line (DEID_DEBUG=1 keeps them).
        self._excepthook = threading.excepthook
        if not os.environ.get("DEID_DEBUG"):
            threading.excepthook = lambda args: None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        threading.excepthook = self._excepthook


def _failure_line(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"deid run: the pipeline failed: {type(exc).__name__}: {first_line}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(help_text())
        return EXIT_OK
    logs.configure()
    interrupt = Interrupt()
    try:
        with interrupt:
            return _main(argv, interrupt)
    except KeyboardInterrupt:
        if os.environ.get("DEID_DEBUG"):
            raise
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        logging.disable(logging.NOTSET)


def _main(argv: list[str], interrupt: Interrupt) -> int:
    try:
        checked = plan(argv)
    except UsageError as exc:
        for line in str(exc).splitlines():
            print(f"deid run: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ProfileError as exc:
        print(f"deid run: profile error\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyUnavailable as exc:
        print(f"deid run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"deid run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    found = [f"{checked.found} files found under {len(checked.patterns)} input(s), "
             f"{checked.ignored} ignored"] if checked.patterns else []
    if checked.sources:  # listed by QIDO-RS inside the run
        count = len(checked.sources)
        found.insert(0, f"{count} DICOMweb quer{'y' if count == 1 else 'ies'} (listed as the "
                        "run goes)")
    print(f"deid run {checked.run_id}: {', '.join(found)} -> {checked.output}", flush=True)
    _LOG.info("run %s: quarantine %s%s, profiles %s, key from %s", checked.run_id,
              checked.quarantine, f", linkage {checked.linkage}" if checked.linkage else "",
              "+".join(checked.profile.names), checked.key_source.describe())
    local = is_local(checked.options) and not checked.sources
    progress = (ProgressLine(checked.found - checked.ignored) if local
                else contextlib.nullcontext())
    try:
        with progress:
            report = run(checked)
    except Exception as exc:  # an infrastructure failure: our DoFns quarantine bad inputs
        if interrupt.fired:  # Beam may wrap the KeyboardInterrupt of its bundle
            raise KeyboardInterrupt from None
        if os.environ.get("DEID_DEBUG"):
            raise
        print(_failure_line(exc), file=sys.stderr)
        return EXIT_FAILED
    print(summary(report))
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())

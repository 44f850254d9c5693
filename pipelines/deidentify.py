"""De-identify DICOM instances from folders or buckets with Apache Beam.

    python -m pipelines.deidentify --input IN --output OUT --profile basic [beam options]
    deid run --input IN --output OUT --profile basic [beam options]

This module only checks the command line and wires it to the transforms in deid.beam; see
"Running the pipeline" in README.md. Exit codes: 0 every input written (or quarantine allowed),
1 something was quarantined, 2 usage, profile or key error, 3 the run failed (a DICOMweb store
down included).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
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
    WriteManifest,
    WriteMetadata,
    WriteQuarantine,
    logs,
    metadata,
    metrics,
    paths,
)
from deid.beam.dicomweb import (
    CREDENTIALS,
    ReadDicomweb,
    Store,
    StoreInstances,
    StoreUnavailable,
    is_dicomweb,
)
from deid.beam.options import add_own_options
from deid.beam.paths import UsageError
from deid.beam.runner import is_local, make_runner, resolve_runner, runner_name
from deid.beam.verify import FINDINGS, REPORT_NAME, WriteVerifyReport
from deid.keys import KeyUnavailable
from deid.profile import Profile, ProfileError, builtin_names, load_profiles
from deid.spelling import respell, unknown_message

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
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
verification finding (--verify), 2 usage, profile or key error, 3 the run failed (a DICOMweb
store down included)."""


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
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S-")
                        + uuid.uuid4().hex[:8])


def _unknown_arguments(argv: Sequence[str]) -> list[str]:
    """What no Beam option class and none of ours recognizes (Beam would drop it silently:
    a mistyped --secret_file would quietly fall back to $DEID_SECRET)."""
    _, unknown = _beam_parser().parse_known_args(list(argv))
    return unknown


def _beam_parser() -> _BeamArgumentParser:
    """A parser of every option `deid run` takes: ours and every Beam option class's."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def _known_options() -> list[str]:
    """Every option `deid run` takes, for suggestions."""
    return [s for action in _beam_parser()._actions for s in action.option_strings]


def help_text() -> str:
    parser = argparse.ArgumentParser(prog="deid run", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_own_options(parser)
    return parser.format_help()


def plan(argv: Sequence[str]) -> Plan:
    """Check the command line, the profiles and the key before anything runs.
    Raises UsageError, ProfileError or KeyUnavailable."""
    resolve_runner(argv)  # first: its options must be known to the parser
    argv = respell(argv, _known_options())  # Beam's options in either spelling too
    try:
        unknown = _unknown_arguments(argv)
    except SystemExit:  # argparse has printed what is wrong (an option without its value)
        raise UsageError("see `deid run --help`") from None
    if unknown:
        raise UsageError(f"{unknown_message(unknown, _known_options())} (see `deid run --help`)")
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
    # Lookup tables go to the workers inside the profile: keyed by HMAC of the original
    # values, they carry no original identifier into the job graph.
    profile = profile.with_sealed_lookups(key)
    del key

    for store in (*sources, *([sink] if sink else [])):
        store.check()  # a store down or refusing us fails here (StoreUnavailable), not later

    return Plan(options=options, patterns=patterns, output=output, quarantine=quarantine,
                manifest=manifest, linkage=linkage, sources=tuple(sources), sink=sink,
                profile=profile, key_source=key_source,
                allow_quarantine=own.allow_quarantine, quarantine_copy=own.quarantine_copy,
                stream_threshold=own.stream_threshold_mb << 20, verify=own.verify,
                prefer_duplicate=own.prefer_duplicate)


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


def build(pipeline: beam.Pipeline, plan: Plan) -> None:
    """The graph: read, de-identify, write; everything not written goes to the quarantine."""
    reads = []
    if plan.patterns:
        reads.append(pipeline | "ReadInstances" >> ReadInstances(plan.patterns))
    if plan.sources:
        reads.append(pipeline | "ReadDicomweb" >> ReadDicomweb(list(plan.sources),
                                                               spill=plan.stream_threshold))
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
            prefer=plan.prefer_duplicate)
    _ = ((deidentified.quarantine, written["quarantine"])
         | "AllQuarantined" >> beam.Flatten()
         | "WriteQuarantine" >> WriteQuarantine(plan.quarantine, plan.quarantine_copy))
    _ = written["written"] | "WriteManifest" >> WriteManifest(plan.manifest)
    _ = written["written"] | "WriteMetadata" >> WriteMetadata(plan.manifest)
    if plan.linkage:
        _ = written["linkage"] | "WriteLinkage" >> WriteLinkage(plan.linkage)
    if plan.verify:
        _ = deidentified.verified | "WriteVerifyReport" >> WriteVerifyReport(
            plan.manifest, plan.profile.names)


@dataclass
class Report:
    """What a finished run did, from its Beam metrics."""

    plan: Plan
    counts: dict[str, int]
    seconds: float
    state: str

    @property
    def read(self) -> int:
        return self.counts.get(metrics.READ, 0)

    @property
    def written(self) -> int:
        return self.counts.get(metrics.WRITTEN, 0)

    @property
    def quarantined(self) -> int:
        return self.counts.get(metrics.QUARANTINED, 0)

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

    def exit_code(self) -> int:
        if not self.consistent or self.read == 0 or self.verify_findings:
            return EXIT_QUARANTINED
        if self.quarantined and not self.plan.allow_quarantine:
            return EXIT_QUARANTINED
        return EXIT_OK


def run(plan: Plan, runner=None) -> Report:
    """Run the pipeline to the end and read its metrics."""
    pipeline = beam.Pipeline(runner=runner or make_runner(plan.options), options=plan.options)
    build(pipeline, plan)
    start = time.monotonic()
    result = pipeline.run()
    state = result.wait_until_finish()
    seconds = time.monotonic() - start
    return Report(plan=plan, counts=metrics.collect(result), seconds=seconds, state=str(state))


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
        f"  read         {report.read:>7} files  {mb_in:>9.2f} MB  "
        f"{report.read / seconds:.1f} files/s, {mb_in / seconds:.2f} MB/s",
        f"  written      {report.written:>7} files  {mb_out:>9.2f} MB  -> {plan.output}",
        f"  quarantined  {report.quarantined:>7} files                -> "
        f"{paths.join(plan.quarantine, 'quarantine.jsonl')}",
    ]
    lines += [f"    {reason:<28} {count:>7}" for reason, count in report.by_reason.items()]
    if plan.quarantine_copy and report.quarantined:
        lines.append(f"    originals copied to {paths.join(plan.quarantine, 'originals')}")
    lines.append(f"  manifest                                  -> "
                 f"{paths.join(plan.manifest, 'manifest.jsonl')}, manifest.parquet, "
                 f"{metadata.NAME}")
    lines.append("  linkage                                   -> " + (
        f"{paths.join(plan.linkage, 'uid_mapping.csv')}, patid_mapping.csv"
        if plan.linkage else "not written (no --linkage_output)"))
    if plan.verify:
        lines.append(f"  verified {report.verify_findings:>3} finding(s)                  -> "
                     f"{paths.join(plan.manifest, REPORT_NAME)}")
    code = report.exit_code()
    if not report.consistent:
        why = "BUG: files read != written + quarantined"
    elif report.read == 0:
        why = "no input file was found"
    elif report.verify_findings:
        why = "verification found problems (see the report; failures are quarantined)"
    elif report.quarantined and plan.allow_quarantine:
        why = "quarantine allowed by --allow_quarantine"
    elif report.quarantined:
        why = "some inputs were quarantined (pass --allow_quarantine to accept that)"
    else:
        why = "every input was written"
    lines.append(f"  exit {code}: {why}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(help_text())
        return EXIT_OK
    logs.configure()
    try:
        checked = plan(argv)
    except UsageError as exc:
        print(f"deid run: {exc}", file=sys.stderr)
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
    _LOG.info("run %s: %d input pattern(s) -> %s (quarantine %s%s), profiles %s, key from %s",
              checked.run_id, len(checked.patterns) + len(checked.sources), checked.output,
              checked.quarantine,
              f", linkage {checked.linkage}" if checked.linkage else "",
              "+".join(checked.profile.names), checked.key_source.describe())
    try:
        report = run(checked)
    except Exception as exc:  # an infrastructure failure: our DoFns quarantine bad inputs
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"deid run: the pipeline failed: {type(exc).__name__}: {first_line}",
              file=sys.stderr)
        if os.environ.get("DEID_DEBUG"):
            raise
        return EXIT_FAILED
    print(summary(report))
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())

"""The runner a command line asks for, with a local default that works offline.

Beam's DirectRunner first tries the Prism runner, which it downloads from the internet, then
falls back. With no --runner, or --runner=DirectRunner or FnApiRunner, we build the
FnApiRunner directly, the way DirectRunner does after its fallback: with the pipeline options
in its provision info, so --direct_running_mode=multi_processing workers get them too
(filesystem settings such as --s3_endpoint_url). --runner=PrismRunner still selects Prism.

Any other runner is resolved before the options are parsed (resolve_runner): Beam's short
names, or a fully qualified class name whose module is imported then, so that the options
that runner defines (a PipelineOptions subclass in its module) are known to the parser.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from deid.beam.paths import UsageError

OFFLINE_LOCAL = ("DirectRunner", "FnApiRunner", "SwitchingDirectRunner")

# Runners that run the pipeline but lose parts of it without an error: never offered.
# Keyed by their module; Beam has no short name for them.
REFUSED = {
    "apache_beam.runners.dask.dask_runner.DaskRunner":
        "Beam's DaskRunner writes one of a pipeline's sinks only, passes tagged outputs on "
        "as the main output and collects no metrics, without an error (quarantined inputs "
        "would go where the written ones go, the manifest and the run's counts would be "
        "missing): use a portable runner (PortableRunner, FlinkRunner, SparkRunner) or "
        "DataflowRunner",
}


def _beam_runners() -> dict[str, str]:
    """Beam's own short names, lower-cased (as Beam matches them), to qualified class names."""
    return {path.rsplit(".", 1)[-1].lower(): path for path in StandardOptions.ALL_KNOWN_RUNNERS}


def resolve_runner(argv: Sequence[str]) -> str | None:
    """The qualified class name of the runner `--runner` names (None without it), with that
    runner's module imported so its options parse. Raises UsageError for a runner Beam does
    not know, one that cannot be imported, or one we refuse (REFUSED)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner")
    try:
        name = parser.parse_known_args(list(argv))[0].runner
    except SystemExit:
        raise UsageError("--runner needs a runner's name") from None
    if name is None:
        return None
    known = _beam_runners()
    path = known.get(name.lower()) or known.get(name.lower() + "runner")
    for refused, why in REFUSED.items():
        short = refused.rsplit(".", 1)[-1].lower()
        if name == refused or name.lower() in (short, short.removesuffix("runner")):
            raise UsageError(f"--runner {name}: {why}")
    if path is None and "." not in name:
        names = ", ".join(sorted(p.rsplit(".", 1)[-1] for p in known.values()))
        raise UsageError(f"--runner {name}: not one of Beam's runners ({names}); name any "
                         "other runner by its module and class (package.module.ClassName)")
    path = path or name
    if path.rsplit(".", 1)[-1] in OFFLINE_LOCAL:
        return path  # built by make_runner; its options are Beam's own
    module, _, cls = path.rpartition(".")
    try:
        runner = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--runner {name}: cannot load {path} ({type(exc).__name__}: "
                         f"{exc})") from None
    if not (isinstance(runner, type) and issubclass(runner, PipelineRunner)):
        raise UsageError(f"--runner {name}: {path} is not a Beam PipelineRunner")
    return path


def runner_name(options: PipelineOptions) -> str:
    name = options.view_as(StandardOptions).runner
    return "DirectRunner" if not name else str(name).split(".")[-1]


def is_local(options: PipelineOptions) -> bool:
    return runner_name(options) in StandardOptions.LOCAL_RUNNERS


def make_runner(options: PipelineOptions):
    """A runner object for the local default, else the runner's name for Beam to resolve."""
    name = runner_name(options)
    if name not in OFFLINE_LOCAL:
        return options.view_as(StandardOptions).runner
    from apache_beam.portability import python_urns
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    from deid.beam.worker import COMMAND

    class LocalRunner(fn_runner.FnApiRunner):
        """multi_processing workers started by deid.beam.worker: Ctrl-C is the launcher's."""

        def run_via_runner_api(self, pipeline_proto, options):
            for environment in pipeline_proto.components.environments.values():
                if environment.urn == python_urns.SUBPROCESS_SDK:
                    environment.payload = COMMAND.encode("utf-8")
            return super().run_via_runner_api(pipeline_proto, options)

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return LocalRunner(provision_info=provision)

"""The runner a command line asks for, with a local default that works offline.

Beam's DirectRunner first tries the Prism runner, which it downloads from the internet, then
falls back. With no --runner, or --runner=DirectRunner or FnApiRunner, we build the
FnApiRunner directly, the way DirectRunner does after its fallback: with the pipeline options
in its provision info, so --direct_running_mode=multi_processing workers get them too
(filesystem settings such as --s3_endpoint_url). --runner=PrismRunner still selects Prism.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

OFFLINE_LOCAL = ("DirectRunner", "FnApiRunner", "SwitchingDirectRunner")


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
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision)

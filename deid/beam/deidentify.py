"""DeidentifyInstances: readable files to de-identified instances, or quarantine records."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from deid.beam import metrics, paths
from deid.beam.keysource import KeySource
from deid.beam.records import INTERNAL_ERROR, OUTPUT_ERROR, Quarantined
from deid.beam.verify import verify_output, verify_streamed
from deid.beam.write import create_staged
from deid.engine import Output, Rejection, deidentify_bytes, deidentify_stream
from deid.engine.files import SinkError
from deid.profile import Profile

QUARANTINE, VERIFIED = "quarantine", "verified"
_LOG = logging.getLogger("deid.beam")


@dataclass(frozen=True)
class Streaming:
    """Inputs of more than ``threshold`` bytes are de-identified by deidentify_stream, from
    the input straight into their staging file in ``staging`` (where WriteInstances would put
    them): no worker holds their pixel data."""

    staging: str
    threshold: int


class DeidentifyFn(beam.DoFn):
    """One file: read all its bytes (or, above the streaming threshold, stream it into its
    staging file), apply the profile, emit (input path, Output), or a Quarantined record
    under the tag `quarantine`. Never raises for an input: a failure to read is
    `unreadable`, to write `output_error`, any unexpected exception `internal_error` with
    only the exception's type as message (exception text may quote a value). With verify,
    each output is checked against its original first (deid.verify): a failure is
    quarantined, never written, and every verification is emitted under the tag `verified`
    for the run's report."""

    def __init__(self, profile: Profile, key_source: KeySource, deidentify=deidentify_bytes,
                 streaming: Streaming | None = None, verify: bool = False):
        super().__init__()
        self._profile = profile
        self._key_source = key_source
        self._deidentify = deidentify
        self._streaming = streaming
        self._verify = verify
        self._key = None

    def setup(self):
        self._key = self._key_source.resolve()  # on the worker: never in the job graph
        self._read = metrics.counter(metrics.READ)
        self._bytes = metrics.counter(metrics.BYTES_READ)

    def process(self, readable):
        path = readable.metadata.path
        self._read.inc()
        size, result = 0, None
        try:
            if self._streaming and readable.metadata.size_in_bytes > self._streaming.threshold:
                size = readable.metadata.size_in_bytes
                self._bytes.inc(size)
                result = self._stream(readable, path, size)
                if self._verify and isinstance(result, Output):
                    result, verified = self._verify_streamed(readable, path, result)
                    yield TaggedOutput(VERIFIED, verified)
            else:
                try:
                    with _open(readable) as f:
                        data = f.read()
                except Exception as exc:
                    result = Rejection("unreadable", f"cannot read the file ({_why(exc)})")
                else:
                    size = len(data)
                    self._bytes.inc(size)
                    result = self._deidentify(data, self._profile, self._key)
                    if self._verify and not isinstance(result, Rejection):
                        result, verified = verify_output(data, result, self._profile)
                        yield TaggedOutput(VERIFIED, verified)
                    del data
        except Exception as exc:
            result = Rejection(INTERNAL_ERROR, type(exc).__name__)
            _LOG.warning("internal error on %s: %s", path, type(exc).__name__)
        metrics.Progress.tick(not isinstance(result, Rejection), size)
        if isinstance(result, Rejection):
            yield TaggedOutput(QUARANTINE, Quarantined(path, result.reason, result.message))
        else:
            yield path, result

    def _stream(self, readable, path: str, size: int) -> Output | Rejection:
        """Stream into the staging file; on anything but an Output, delete what was written."""
        assert self._streaming is not None
        staging = paths.staging_file(self._streaming.staging, path)
        try:
            source = _open(readable)
        except Exception as exc:
            return Rejection("unreadable", f"cannot read the file ({_why(exc)})")
        result: Output | Rejection
        try:
            with source:
                sink = create_staged(staging)
                try:
                    result = deidentify_stream(source, sink, self._profile, self._key,
                                               size=size)
                except BaseException:
                    _close_quietly(sink)
                    raise
                if isinstance(result, Rejection):
                    _close_quietly(sink)  # what it holds is deleted below
                else:
                    sink.close()  # an upload completes here: its failure is ours
        except Exception as exc:  # the sink failed (SinkError), or creating or closing it
            name = str(exc) if isinstance(exc, SinkError) else type(exc).__name__
            _LOG.warning("cannot stage the output of %s: %s", path, name)
            result = Rejection(OUTPUT_ERROR, f"cannot write the output ({name})")
        if isinstance(result, Rejection):
            _discard(staging)
        return result

    def _verify_streamed(self, readable, path: str, out: Output):
        """Verify a streamed instance in its staging file; delete the file if it fails."""
        assert self._streaming is not None
        staging = paths.staging_file(self._streaming.staging, path)
        result, verified = verify_streamed(_open(readable), staging, out, self._profile)
        if isinstance(result, Rejection):
            _discard(staging)
        return result, verified


def _why(exc: Exception) -> str:
    """An exception's type, or its `safe_message` where it has one (a message that holds no
    value, such as the HTTP status of a DICOMweb retrieval)."""
    return getattr(exc, "safe_message", None) or type(exc).__name__


def _discard(staging: str) -> None:
    """Delete a staging file whose instance is not written."""
    with contextlib.suppress(Exception):  # else RemoveStaging deletes it
        FileSystems.delete([staging])


def _close_quietly(sink) -> None:
    """Close a sink whose content is discarded (an empty S3 upload fails to complete)."""
    with contextlib.suppress(Exception):
        sink.close()


def _open(readable):
    return readable.open(mime_type="application/octet-stream",
                         compression_type=CompressionTypes.UNCOMPRESSED)


class DeidentifyInstances(beam.PTransform):
    """ReadableFiles in; a tuple of tagged PCollections out: `instances` of
    (input path, deid.engine.Output), `quarantine` of Quarantined records and, with verify,
    `verified` records (deid.beam.verify.Verified). With ``streaming``, the Outputs of large
    inputs carry no data: they are in their staging files already."""

    def __init__(self, profile: Profile, key_source: KeySource, deidentify=deidentify_bytes,
                 streaming: Streaming | None = None, verify: bool = False):
        super().__init__()
        self._fn = DeidentifyFn(profile, key_source, deidentify, streaming, verify)

    def expand(self, files):
        return files | "Deidentify" >> beam.ParDo(self._fn).with_outputs(
            QUARANTINE, VERIFIED, main="instances")

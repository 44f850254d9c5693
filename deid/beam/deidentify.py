"""DeidentifyInstances: readable files to de-identified instances, or quarantine records."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.pvalue import TaggedOutput

from deid.beam import metrics
from deid.beam.keysource import KeySource
from deid.beam.records import INTERNAL_ERROR, Quarantined
from deid.beam.verify import verify_output
from deid.engine import Rejection, deidentify_bytes
from deid.profile import Profile

QUARANTINE, VERIFIED = "quarantine", "verified"
_LOG = logging.getLogger("deid.beam")


class DeidentifyFn(beam.DoFn):
    """One file: read all its bytes, apply the profile, emit (input path, Output), or a
    Quarantined record under the tag `quarantine`. Never raises for an input: a failure to
    read is `unreadable`, any unexpected exception `internal_error` with only the exception's
    type as message (exception text may quote a value). With verify, each output is checked
    against its original first (deid.verify): a failure is quarantined, never written, and
    every verification is emitted under the tag `verified` for the run's report."""

    def __init__(self, profile: Profile, key_source: KeySource, deidentify=deidentify_bytes,
                 verify: bool = False):
        super().__init__()
        self._profile = profile
        self._key_source = key_source
        self._deidentify = deidentify
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
            try:
                with readable.open(mime_type="application/octet-stream",
                                   compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    data = f.read()
            except Exception as exc:
                result = Rejection("unreadable", f"cannot read the file ({type(exc).__name__})")
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


class DeidentifyInstances(beam.PTransform):
    """ReadableFiles in; a tuple of tagged PCollections out: `instances` of
    (input path, deid.engine.Output), `quarantine` of Quarantined records and, with verify,
    `verified` records (deid.beam.verify.Verified)."""

    def __init__(self, profile: Profile, key_source: KeySource, deidentify=deidentify_bytes,
                 verify: bool = False):
        super().__init__()
        self._fn = DeidentifyFn(profile, key_source, deidentify, verify)

    def expand(self, files):
        return files | "Deidentify" >> beam.ParDo(self._fn).with_outputs(
            QUARANTINE, VERIFIED, main="instances")

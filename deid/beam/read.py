"""ReadInstances: input patterns to readable files, each once, spread over the workers."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata

from deid.beam import metrics
from deid.beam.ignore import Ignore
from deid.beam.ledger import ALREADY_QUARANTINED, ALREADY_WRITTEN


def _first(keyed: tuple[str, list[FileMetadata]]) -> FileMetadata:
    return next(iter(keyed[1]))


class SkipIgnoredFn(beam.DoFn):
    """Leave out what is not an instance (deid.beam.ignore), counted as inputs_ignored."""

    def __init__(self, ignore: Ignore):
        super().__init__()
        self._ignore = ignore

    def setup(self):
        self._ignored = metrics.counter(metrics.IGNORED)

    def process(self, metadata: FileMetadata):
        if self._ignore(metadata.path):
            self._ignored.inc()
        else:
            yield metadata


class SkipDoneFn(beam.DoFn):
    """(path, {"match": metadata, "done": ledger entries}): a matched file the ledger says is
    done is skipped and counted (already_written, already_quarantined); the first metadata of
    any other matched file goes on."""

    def setup(self):
        self._written = metrics.counter(ALREADY_WRITTEN)
        self._quarantined = metrics.counter(ALREADY_QUARANTINED)

    def process(self, element):
        _, grouped = element
        matches, done = list(grouped["match"]), list(grouped["done"])
        if not matches:
            return
        if done:
            (self._written if "written" in done[0] else self._quarantined).inc()
            metrics.Progress.skip()
            return
        yield matches[0]


class ReadInstances(beam.PTransform):
    """Match patterns (local, gs://, s3://; `**` crosses folders), drop files matched by more
    than one pattern, and emit `fileio.ReadableFile`s after a Reshuffle, so the reading and
    de-identifying spread over all workers instead of staying fused to the matching step.

    Files are read as they are: no decompression by extension (a `.gz` is not a DICOM file).
    The bytes are read by the next step, where a failure becomes a quarantine record.
    Files ``ignore`` names (junk, --exclude) are left out and counted; so are those ``done``
    holds (a PCollection of (input path, ledger entry): deid.beam.ledger), in the same
    grouping that reads each path once.
    """

    def __init__(self, patterns: list[str], ignore: Ignore | None = None, done=None):
        super().__init__()
        self.patterns = list(patterns)
        self.ignore = ignore or Ignore()
        self.done = done

    def expand(self, pbegin):
        matched = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()  # a pattern matching nothing reads nothing
            | "SkipIgnored" >> beam.ParDo(SkipIgnoredFn(self.ignore))
            | "KeyByPath" >> beam.Map(lambda m: (m.path, m)))
        if self.done is None:
            once = (matched
                    | "GroupByPath" >> beam.GroupByKey()
                    | "OncePerPath" >> beam.Map(_first))
        else:
            once = ({"match": matched, "done": self.done}
                    | "GroupByPath" >> beam.CoGroupByKey()
                    | "SkipDone" >> beam.ParDo(SkipDoneFn()))
        return (
            once
            | "Readable" >> fileio.ReadMatches(compression=CompressionTypes.UNCOMPRESSED,
                                               skip_directories=True)
            | "Spread" >> beam.Reshuffle()
        )

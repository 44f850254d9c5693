"""ReadInstances: input patterns to readable files, each once, spread over the workers."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata


def _first(keyed: tuple[str, list[FileMetadata]]) -> FileMetadata:
    return next(iter(keyed[1]))


class ReadInstances(beam.PTransform):
    """Match patterns (local, gs://, s3://; `**` crosses folders), drop files matched by more
    than one pattern, and emit `fileio.ReadableFile`s after a Reshuffle, so the reading and
    de-identifying spread over all workers instead of staying fused to the matching step.

    Files are read as they are: no decompression by extension (a `.gz` is not a DICOM file).
    The bytes are read by the next step, where a failure becomes a quarantine record.
    """

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = list(patterns)

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()  # a pattern matching nothing reads nothing
            | "KeyByPath" >> beam.Map(lambda m: (m.path, m))
            | "GroupByPath" >> beam.GroupByKey()
            | "OncePerPath" >> beam.Map(_first)
            | "Readable" >> fileio.ReadMatches(compression=CompressionTypes.UNCOMPRESSED,
                                               skip_directories=True)
            | "Spread" >> beam.Reshuffle()
        )

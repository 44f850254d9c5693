"""WriteQuarantine: Beam's dead-letter pattern. Every input not written gets a JSON line in
`<quarantine>/quarantine.jsonl`: its path, a reason code and a message without values. With
copy_originals, the original file is copied to `<quarantine>/originals/<key>/<name>`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid.beam import metrics, paths
from deid.beam.records import Quarantined

_LOG = logging.getLogger("deid.beam")


class CountQuarantinedFn(beam.DoFn):
    def setup(self):
        self._total = metrics.counter(metrics.QUARANTINED)
        self._by_reason = {}

    def process(self, record: Quarantined):
        self._total.inc()
        if record.reason not in self._by_reason:
            self._by_reason[record.reason] = metrics.counter(
                metrics.REASON_PREFIX + record.reason)
        self._by_reason[record.reason].inc()
        _LOG.debug("quarantined %s: %s", record.input, record.reason)
        yield record


class CopyOriginalFn(beam.DoFn):
    """Stream the original into the quarantine folder (any filesystem to any other)."""

    def __init__(self, folder: str):
        super().__init__()
        self._folder = folder

    def process(self, record: Quarantined):
        target = paths.join(self._folder, "originals", paths.path_key(record.input, 16),
                            paths.basename(record.input) or "file")
        try:
            with FileSystems.open(record.input, compression_type=CompressionTypes.UNCOMPRESSED
                                  ) as source, \
                    FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED
                                       ) as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except Exception as exc:
            _LOG.warning("cannot copy %s into the quarantine: %s", record.input,
                         type(exc).__name__)
            yield record
        else:
            yield dataclasses.replace(record, copy=target)


class PrepareQuarantine(beam.PTransform):
    """Quarantined records in, counted by reason in the Beam metrics and, with
    copy_originals, each original copied into `<folder>/originals/`; the records out."""

    def __init__(self, folder: str, copy_originals: bool = False):
        super().__init__()
        self._folder = folder
        self._copy = copy_originals

    def expand(self, records):
        counted = records | "CountByReason" >> beam.ParDo(CountQuarantinedFn())
        if self._copy:
            counted = counted | "CopyOriginals" >> beam.ParDo(CopyOriginalFn(self._folder))
        return counted


class WriteQuarantine(beam.PTransform):
    """Quarantined records in; `<folder>/quarantine.jsonl` (one file, empty when nothing was
    quarantined) out. Counts every record by reason in the Beam metrics."""

    def __init__(self, folder: str, copy_originals: bool = False):
        super().__init__()
        self._folder = folder
        self._copy = copy_originals

    def expand(self, records):
        return (records
                | "Prepare" >> PrepareQuarantine(self._folder, self._copy)
                | "ToJson" >> beam.Map(Quarantined.to_json)
                | "WriteRecords" >> beam.io.WriteToText(
                    paths.join(self._folder, "quarantine"), file_name_suffix=".jsonl",
                    num_shards=1, shard_name_template=""))

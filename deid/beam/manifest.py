"""WriteManifest: one row per written instance, as `manifest.jsonl` and `manifest.parquet`.

Rows hold the new UIDs, SOP class, modality, transfer syntax, size, sha256, the profiles
applied and the output path relative to the output root: nothing that identifies, no input
path (file names often do).
"""

from __future__ import annotations

import json

import apache_beam as beam

from deid.beam import paths
from deid.beam.records import MANIFEST_SCHEMA


def _json_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False)


class WriteManifestRows(beam.PTransform):
    """Manifest rows (dicts) in; `<folder>/manifest.jsonl` and `<folder>/manifest.parquet`
    out (single files, written even when empty)."""

    def __init__(self, folder: str):
        super().__init__()
        self._folder = folder

    def expand(self, rows):
        jsonl = (rows
                 | "ToJson" >> beam.Map(_json_line)
                 | "WriteJsonLines" >> beam.io.WriteToText(
                     paths.join(self._folder, "manifest"), file_name_suffix=".jsonl",
                     num_shards=1, shard_name_template=""))
        parquet = rows | "WriteParquet" >> beam.io.WriteToParquet(
            paths.join(self._folder, "manifest"), MANIFEST_SCHEMA, file_name_suffix=".parquet",
            num_shards=1, shard_name_template="")
        return jsonl, parquet


class WriteManifest(beam.PTransform):
    """Staged records of written instances in; the manifest of these alone out."""

    def __init__(self, folder: str):
        super().__init__()
        self._folder = folder

    def expand(self, written):
        return (written
                | "ManifestRow" >> beam.Map(lambda s: s.manifest_row())
                | "WriteRows" >> WriteManifestRows(self._folder))

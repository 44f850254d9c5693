"""The records that flow between the transforms and into the sidecar files.

None of them holds an identifying value except the linkage pairs, which flow only when
--linkage_output is given and only towards the linkage writer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from deid.engine import Output

# Reason codes the pipeline adds to the engine's (unreadable, not_dicom, ...).
INTERNAL_ERROR = "internal_error"  # a bug: the message is the exception type only
OUTPUT_ERROR = "output_error"  # the de-identified instance could not be written
DUPLICATE = "duplicate_instance"  # another input became the same output instance


@dataclass(frozen=True)
class Quarantined:
    """One input that was not written: where it is and why, never what it holds."""

    input: str
    reason: str
    message: str
    copy: str | None = None  # where --quarantine_copy put the original

    def to_json(self) -> str:
        record = {"input": self.input, "reason": self.reason, "message": self.message}
        if self.copy is not None:
            record["copy"] = self.copy
        return json.dumps(record, ensure_ascii=False)


@dataclass(frozen=True)
class Staged:
    """A de-identified instance written under its temporary name, waiting to be renamed."""

    input: str
    staging_path: str
    output_path: str
    sha256: str
    size: int
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    transfer_syntax_uid: str
    profiles: tuple[str, ...]
    # The instance's row of metadata.parquet (deid.beam.metadata.row_from), read back from
    # the de-identified bytes: every sink that writes instances fills it.
    metadata: dict = field(repr=False)
    # Re-identifying; empty unless --linkage_output. Kept out of repr so no log shows them.
    uid_map: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    patient_ids: tuple[str, str] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, input_path: str, out: Output, staging_path: str, output_path: str,
           metadata: dict, linkage: bool = False) -> Staged:
        """The record of one de-identified instance; its UID map and patient IDs only with
        ``linkage``."""
        return cls(
            input=input_path, staging_path=staging_path, output_path=output_path,
            sha256=out.sha256, size=out.size,
            sop_instance_uid=out.sop_instance_uid, sop_class_uid=out.sop_class_uid,
            study_instance_uid=out.study_instance_uid,
            series_instance_uid=out.series_instance_uid, modality=out.modality,
            transfer_syntax_uid=out.transfer_syntax_uid, profiles=tuple(out.profiles),
            metadata=metadata,
            uid_map=tuple(out.uid_map) if linkage else (),
            patient_ids=out.patient_ids if linkage else None)

    def relative_path(self) -> str:
        """Relative to the output root, so that a release can move; a DICOMweb output's
        WADO-RS URL as it is."""
        if self.output_path.startswith("dicomweb+"):
            return self.output_path
        return f"{self.study_instance_uid}/{self.series_instance_uid}/{self.sop_instance_uid}.dcm"

    def manifest_row(self) -> dict:
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "sop_class_uid": self.sop_class_uid,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "modality": self.modality,
            "transfer_syntax_uid": self.transfer_syntax_uid,
            "size": self.size,
            "sha256": self.sha256,
            "profiles": list(self.profiles),
            "output_path": self.relative_path(),
        }


@dataclass(frozen=True)
class Linkage:
    """What re-identifies one written instance: for the linkage files only."""

    uid_map: tuple[tuple[str, str], ...] = field(repr=False)
    patient_ids: tuple[str, str] | None = field(repr=False)


MANIFEST_SCHEMA = pa.schema([
    ("sop_instance_uid", pa.string()),
    ("sop_class_uid", pa.string()),
    ("study_instance_uid", pa.string()),
    ("series_instance_uid", pa.string()),
    ("modality", pa.string()),
    ("transfer_syntax_uid", pa.string()),
    ("size", pa.int64()),
    ("sha256", pa.string()),
    ("profiles", pa.list_(pa.string())),
    ("output_path", pa.string()),
])
MANIFEST_FIELDS = tuple(MANIFEST_SCHEMA.names)

__all__ = ["DUPLICATE", "INTERNAL_ERROR", "MANIFEST_FIELDS", "MANIFEST_SCHEMA", "OUTPUT_ERROR",
           "Linkage", "Quarantined", "Staged"]

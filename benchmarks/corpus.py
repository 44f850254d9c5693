"""A benchmark corpus: pydicom's own test files of several kinds, copied N times as distinct
instances (patients, studies, series, SOP instances, dates), so every tool does real work."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

# Readable, without burned-in annotation, written by our basic profile; one kind per row.
SOURCES = (
    "CT_small.dcm",  # CT
    "MR_small.dcm",  # MR
    "test-SR.dcm",  # Comprehensive SR, nested content items
    "reportsi.dcm",  # Basic Text SR
    "liver_1frame.dcm",  # SEG
    "JPEG2000.dcm",  # NM, JPEG 2000: encapsulated pixels, never decoded
    "rtplan.dcm",  # RT Plan, implicit VR
    "rtdose.dcm",  # RT Dose
    "waveform_ecg.dcm",  # 12-lead ECG waveform
)
INSTANCES_PER_PATIENT = 6
UID_ROOT = "1.2.826.0.1.3680043.10.1234."  # an arbitrary example root: only for test data


def source_datasets() -> list[Dataset]:
    """The source files, read once."""
    return [dcmread(get_testdata_file(name)) for name in SOURCES]


def _uid(kind: str, *numbers: int) -> str:
    code = {"study": 1, "series": 2, "instance": 3}[kind]
    return UID_ROOT + ".".join(str(n) for n in (code, *numbers))


def personalize(dataset: Dataset, index: int) -> None:
    """Make a copy of a source a distinct instance: its own patient (one per
    INSTANCES_PER_PATIENT instances), study, series, SOP Instance UID and dates."""
    patient = index // INSTANCES_PER_PATIENT
    dataset.PatientID = f"BENCH{patient:06d}"
    dataset.PatientName = f"Bench^Patient{patient}^M"
    dataset.PatientBirthDate = f"{1940 + patient % 60}0{1 + patient % 9}1{patient % 9}"
    dataset.StudyInstanceUID = _uid("study", patient)
    dataset.SeriesInstanceUID = _uid("series", patient, index)
    dataset.SOPInstanceUID = _uid("instance", index)
    dataset.StudyDate = f"20{10 + patient % 15:02d}0{1 + index % 9}2{index % 9}"
    dataset.AccessionNumber = f"A{index:08d}"
    if getattr(dataset, "file_meta", None) is not None:
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID


def build(folder: Path, count: int) -> list[Path]:
    """Write `count` instances into `folder` (created), sources in turn; returns the paths.
    Files already there from an earlier, larger build are reused."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_datasets()
    paths = []
    for index in range(count):
        path = folder / f"{index:07d}.dcm"
        paths.append(path)
        if path.exists():
            continue
        source = sources[index % len(sources)]
        dataset = source.copy()
        dataset.file_meta = source.file_meta.copy()
        personalize(dataset, index)
        dataset.save_as(path, enforce_file_format=True)
    return paths


def subset(corpus: list[Path], count: int, folder: Path) -> Path:
    """A folder holding the first `count` files of a corpus, as hard links (no copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in corpus[:count]:
        link = folder / path.name
        if not link.exists():
            os.link(path, link)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("count", type=int)
    args = parser.parse_args()
    print(f"{len(build(args.folder, args.count))} instances in {args.folder}")


if __name__ == "__main__":
    main()

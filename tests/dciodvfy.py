"""dciodvfy (dicom3tools), where installed: the errors it reports for a file, without the values
they quote, so that an input's and its output's errors compare."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                    reason="dicom3tools' dciodvfy is not installed")


def errors(path: Path) -> set[str]:
    """dciodvfy's error lines: the attribute's path (item numbers left out) and the kind of
    error, values left out (they differ between an input and its output). A deflated data set,
    which dciodvfy misreads, is checked inflated (written explicit VR little endian)."""
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(["dciodvfy", "-new", str(_readable(path, Path(folder)))],
                             capture_output=True, text=True, errors="replace", timeout=60,
                             check=False)
    return {_normalized(line) for line in (run.stdout + run.stderr).splitlines()
            if line.startswith("Error")}


def _readable(path: Path, folder: Path) -> Path:
    try:
        ds = dcmread(path, force=True)
        deflated = ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    except Exception:
        return path  # what pydicom cannot read, dciodvfy reports as it finds it
    if not deflated:
        return path
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    inflated = folder / path.name
    ds.save_as(inflated, enforce_file_format=True)
    return inflated


def _normalized(line: str) -> str:
    line = re.sub(r"\[\d+\]", "", line)  # item numbers
    line = re.sub(r"=\s*<[^>]*>|'[^']*'|\"[^\"]*\"", "=#", line)  # quoted values
    return re.sub(r"\b\d+ dec\b|\b0x[0-9a-f]+\b", "#", line)


def new_errors(pairs: list[tuple[Path, Path]]) -> dict[str, set[str]]:
    """For each (input, output) pair, the errors of the output its input did not have, by
    output file name; none: an empty dictionary."""
    found = {}
    for source, output in pairs:
        added = errors(output) - errors(source)
        if added:
            found[output.name] = added
    return found

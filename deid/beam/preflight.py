"""Checks made before Beam starts: a folder the run will write is a folder (not a file) and is
writable, locally or in a bucket, so that a typo or a read-only mount is a usage error of one
line, not a traceback after the workers have started."""

from __future__ import annotations

import contextlib
import os
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid.beam import paths

PROBE_PREFIX = ".deid-probe-"


def _reason(exc: BaseException) -> str:
    """The OS's reason, or the exception's type: never a long client message."""
    return getattr(exc, "strerror", None) or type(exc).__name__


def folder_problem(option: str, folder: str) -> str | None:
    """What stops this run from writing under ``folder`` (``option`` names it), or None.
    A local folder is created if missing; in a bucket a probe object is written and deleted."""
    if paths.is_remote(folder):
        return _remote_problem(option, folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"{option} {folder} is a file: choose a folder"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        return f"{option} {folder}: cannot create the folder ({_reason(exc)})"
    probe = os.path.join(folder, PROBE_PREFIX + uuid.uuid4().hex)
    try:
        with open(probe, "wb") as f:
            f.write(b"probe")
    except OSError as exc:
        return f"{option} {folder} is not writable ({_reason(exc)})"
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    return None


def _remote_problem(option: str, folder: str) -> str | None:
    try:
        found = FileSystems.match([folder])[0].metadata_list
    except Exception:  # nothing matched, or the bucket cannot be listed: the probe tells
        found = []
    if any(m.path == folder for m in found):
        return f"{option} {folder} is an object, not a folder: choose a prefix"
    probe = paths.join(folder, PROBE_PREFIX + uuid.uuid4().hex)
    try:
        with FileSystems.create(probe, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(b"probe")
    except Exception as exc:
        return f"{option} {folder} is not writable ({_reason(exc)})"
    try:
        FileSystems.delete([probe])
    except Exception as exc:
        return f"{option} {folder}: a written object cannot be deleted ({_reason(exc)})"
    return None


def check_folders(folders: list[tuple[str, str]]) -> list[str]:
    """The problems of every (option, folder), one line each."""
    return [problem for option, folder in folders
            if (problem := folder_problem(option, folder)) is not None]

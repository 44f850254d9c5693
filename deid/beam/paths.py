"""Paths on any Beam filesystem (local, gs://, s3://): inputs turned into match patterns, the
layout of the outputs, and the checks that keep the de-identified tree free of anything else.
"""

from __future__ import annotations

import hashlib
import os
import re

from apache_beam.io.filesystem import FileSystem
from apache_beam.io.filesystems import FileSystems

from deid.engine.uids import is_valid_uid

WILDCARDS = re.compile(r"[*?\[]")
STAGING = ".deid-staging"


class UsageError(Exception):
    """A command line that cannot run: the message says what to change."""


def is_remote(path: str) -> bool:
    """True for a bucket or any other URI (gs://, s3://, ...), False for a local path."""
    return FileSystems.get_scheme(path) not in (None, "file")


def normalize(path: str) -> str:
    """Local paths absolute (worker processes may not share the working directory); URIs as
    given, without a trailing slash."""
    if is_remote(path):
        return path if path.endswith("://") else path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def basename(path: str) -> str:
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1]


def has_wildcard(path: str) -> bool:
    return bool(WILDCARDS.search(path))


def input_pattern(spec: str) -> str:
    """A folder, a glob or a bucket prefix as a Beam match pattern (`**` crosses folders)."""
    if has_wildcard(spec):
        return spec if is_remote(spec) else os.path.abspath(os.path.expanduser(spec))
    if not is_remote(spec):
        path = normalize(spec)
        if os.path.isdir(path):
            return os.path.join(path, "**")
        if os.path.isfile(path):
            return path
        raise UsageError(f"--input {spec}: no such file or folder")
    if spec.endswith("/"):
        return spec + "**"
    # gs://bucket/name is a file when an object has exactly that name, else a prefix.
    found = FileSystems.match([spec])[0].metadata_list
    if any(m.path == spec for m in found):
        return spec
    return spec + "/**"


def default_quarantine(output: str) -> str:
    """`<output>-quarantine`, beside the output: quarantined originals hold PHI and never go
    inside the de-identified tree."""
    stripped = output.rstrip("/")
    if is_remote(stripped) and "/" not in stripped.split("://", 1)[1]:
        raise UsageError(f"--output {output} is a bucket root: pass --quarantine_output, a "
                         "folder outside the output")
    if not is_remote(stripped) and os.path.dirname(stripped) == stripped:
        raise UsageError("--output is the file system root: choose a folder")
    return stripped + "-quarantine"


def is_within(path: str, folder: str) -> bool:
    path, folder = path.rstrip("/"), folder.rstrip("/")
    return path == folder or path.startswith(folder + "/")


def matches(pattern: str, path: str) -> bool:
    return re.match(FileSystem.translate_pattern(pattern), path) is not None


def output_path(output: str, study: str, series: str, sop: str) -> str:
    """`<output>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`. The engine has
    validated the UIDs; checked again here, since a path segment made of anything but digits
    and dots (`..`, `/`, `\\`, NUL) could place a file outside the output. Raises ValueError,
    naming the attribute, never the value."""
    for name, uid in (("StudyInstanceUID", study), ("SeriesInstanceUID", series),
                      ("SOPInstanceUID", sop)):
        if not is_valid_uid(uid):
            raise ValueError(f"{name} is not a valid UID: it cannot name an output path")
    return join(output, study, series, sop + ".dcm")


def staging_dir(output: str, run_id: str) -> str:
    """Where this run writes instances before renaming them into place."""
    return join(output, STAGING, run_id)


def staging_file(staging: str, input_path: str) -> str:
    """The temporary name of the instance made from ``input_path``, in a staging folder."""
    return join(staging, path_key(input_path) + ".dcm")


def path_key(path: str, length: int = 32) -> str:
    """A stable name derived from an input path (the path itself may identify someone)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:length]


def ensure_parent(path: str) -> None:
    """Buckets have no folders; a local rename needs its destination folder."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)

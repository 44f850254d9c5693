"""Inputs that are not instances and are left out, counted, never quarantined: the files that
operating systems and archivers leave beside images, and the operator's --exclude globs.
A DICOMDIR is not among them: it is DICOM, and keeps its own quarantine reason."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

# Finder, Explorer and zip archives of macOS write these beside the files they list.
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
JUNK_FOLDERS = frozenset({"__MACOSX"})
APPLE_DOUBLE = "._"  # resource forks on volumes without them: ._IM0001


class Ignore:
    """Whether an input path is left out. A glob without '/' matches the file name, one with
    '/' the whole path (`*` crosses '/' there, as in fnmatch)."""

    def __init__(self, exclude: Sequence[str] = ()):
        self.exclude = tuple(exclude)
        names = [fnmatch.translate(g) for g in self.exclude if "/" not in g]
        whole = [fnmatch.translate(g) for g in self.exclude if "/" in g]
        self._names = re.compile("|".join(names)) if names else None
        self._whole = re.compile("|".join(whole)) if whole else None

    def __call__(self, path: str) -> bool:
        parts = re.split(r"[/\\]", path)
        name = parts[-1]
        if name.lower() in JUNK_NAMES or name.startswith(APPLE_DOUBLE):
            return True
        if JUNK_FOLDERS.intersection(parts[:-1]):
            return True
        if self._names is not None and self._names.match(name):
            return True
        return self._whole is not None and self._whole.match(path) is not None

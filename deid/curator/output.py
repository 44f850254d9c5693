"""Aligned text tables for people, JSON for scripts."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
          wrap_last: bool = False, out: TextIO | None = None) -> None:
    """Print rows under headers, columns padded to their widest cell.

    The last column is never padded; with ``wrap_last`` and a terminal, it is cut to the
    terminal's width (with an ellipsis) so every row stays on one line.
    """
    out = out or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    limit = None
    if wrap_last and out.isatty():
        limit = shutil.get_terminal_size((120, 24)).columns
    for row in [list(headers), *cells]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        line = f"{line}  {row[-1]}" if len(row) > 1 else row[-1]
        if limit is not None and len(line) > limit:
            line = line[:limit - 1] + "\u2026"
        print(line.rstrip(), file=out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return str(value).replace("\n", " ")


def dump_json(data: Any, out: TextIO | None = None) -> None:
    """Indented, key order kept, one trailing newline."""
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out or sys.stdout)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"

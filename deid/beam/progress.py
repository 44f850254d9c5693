"""The launcher's progress line for local runs: files done of files found, rate and ETA.

Each process that de-identifies (the launcher itself, or the worker processes of
--direct_running_mode multi_processing) writes its count into a shared folder
(deid.beam.metrics.Progress); a thread of the launcher sums them. On a terminal the line is
redrawn in place every second; otherwise (a log) a plain line is printed every 30 seconds.
Counts and rates only, never a value or a path.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

from deid.beam.metrics import SHARE_DIR


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def line(done: int, total: int, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = _clock((total - done) / rate) if rate > 0 and done < total else "-"
    share = f"{100 * done / total:5.1f}%" if total else "  -  "
    return (f"deid run: {done:>7}/{total} files {share}  {rate:7.1f} files/s  "
            f"ETA {eta}")


class ProgressLine:
    """A context manager: shows progress while the pipeline runs, on ``stream``."""

    def __init__(self, total: int, stream=None):
        self._total = total
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._interval = 1.0 if self._tty else 30.0
        self._stop = threading.Event()
        self._folder = ""
        self._previous = None

    def __enter__(self) -> ProgressLine:
        self._folder = tempfile.mkdtemp(prefix="deid-progress-")
        self._previous = os.environ.get(SHARE_DIR)
        os.environ[SHARE_DIR] = self._folder  # worker processes inherit the environment
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._show, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
        if self._previous is None:
            os.environ.pop(SHARE_DIR, None)
        else:
            os.environ[SHARE_DIR] = self._previous
        shutil.rmtree(self._folder, ignore_errors=True)

    def done(self) -> int:
        total = 0
        for name in os.listdir(self._folder):
            if name.isdigit():
                try:
                    with open(os.path.join(self._folder, name)) as f:
                        total += int(f.read() or 0)
                except (OSError, ValueError):
                    pass
        return total

    def _show(self) -> None:
        while not self._stop.wait(self._interval):
            text = line(min(self.done(), self._total), self._total,
                        time.monotonic() - self._start)
            try:
                self._stream.write(f"\r{text}\033[K" if self._tty else text + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                return

"""Beam metrics of a run, progress lines while it works, and reading them back at the end.

Counters (namespace `deid`): inputs_ignored, instances_read, instances_written,
instances_quarantined, quarantined.<reason>, bytes_read, bytes_written, and with --verify
verify_findings (instances that failed verification plus the run's consistency findings).
On every run: instances_read == instances_written + instances_quarantined.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "deid"
READ = "instances_read"
WRITTEN = "instances_written"
QUARANTINED = "instances_quarantined"
IGNORED = "inputs_ignored"  # junk and --exclude: neither read nor quarantined
BYTES_READ = "bytes_read"
BYTES_WRITTEN = "bytes_written"
REASON_PREFIX = "quarantined."

PROGRESS_SECONDS = float(os.environ.get("DEID_PROGRESS_SECONDS", "10"))
# Set by the launcher of a local run (deid.beam.progress): each process shares its count there.
SHARE_DIR = "DEID_PROGRESS_DIR"
_LOG = logging.getLogger("deid.progress")


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class Progress:
    """Counts of this worker process, logged every PROGRESS_SECONDS: on a local run with one
    process these are the run's counts. Counts and rates only, never a value or a path."""

    _lock = threading.Lock()
    _start: float | None = None
    _last = 0.0
    _shared = 0.0
    read = deidentified = rejected = nbytes = skipped = 0

    @classmethod
    def skip(cls) -> None:
        """An input the ledger says is done: progress too."""
        with cls._lock:
            cls.skipped += 1
            cls._share(time.monotonic())

    @classmethod
    def _share(cls, now: float, every: float = 0.5) -> None:
        folder = os.environ.get(SHARE_DIR)
        if not folder or now - cls._shared < every:
            return
        cls._shared = now
        try:  # whole or not at all: the launcher may read it at any time
            temporary = os.path.join(folder, f".{os.getpid()}")
            with open(temporary, "w") as f:
                f.write(f"{cls.read + cls.skipped}")
            os.replace(temporary, os.path.join(folder, str(os.getpid())))
        except OSError:
            pass

    @classmethod
    def tick(cls, deidentified: bool, nbytes: int) -> None:
        with cls._lock:
            now = time.monotonic()
            cls._share(now)
            if cls._start is None:
                cls._start = cls._last = now
            cls.read += 1
            cls.nbytes += nbytes
            if deidentified:
                cls.deidentified += 1
            else:
                cls.rejected += 1
            if now - cls._last < PROGRESS_SECONDS:
                return
            cls._last = now
            elapsed = max(now - cls._start, 1e-9)
            _LOG.info("progress (process %d): %d files read, %d de-identified, %d rejected, "
                      "%.1f MB in %.1f s (%.1f files/s)", os.getpid(), cls.read,
                      cls.deidentified, cls.rejected, cls.nbytes / 1e6, elapsed,
                      cls.read / elapsed)


def collect(result) -> dict[str, int]:
    """The run's counters by name, summed over steps (committed values where the runner has
    them)."""
    counts: dict[str, int] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for entry in query["counters"]:
        try:
            value = entry.committed
        except Exception:  # some runners only report attempted values
            value = None
        if value is None:
            value = entry.attempted
        name = entry.key.metric.name
        counts[name] = counts.get(name, 0) + int(value or 0)
    return counts

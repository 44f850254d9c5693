"""Beam's SDK worker for local multi-process runs, with Ctrl-C left to the launcher.

A terminal sends SIGINT to every process of the foreground group, Beam's worker processes
included, and each would print its own traceback. Beam starts the command through a shell,
which ignores SIGINT before Python starts (an ignored signal stays ignored across exec, and
Python then installs no KeyboardInterrupt handler): the workers keep working until the
launcher, which handles Ctrl-C, stops them, and end quietly when it is gone.
"""

from __future__ import annotations

import os
import runpy
import shlex
import signal
import sys
import threading
import time

COMMAND = f"trap '' INT; exec {shlex.quote(sys.executable)} -m deid.beam.worker"


def _end_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def stop_workers() -> int:
    """End this process's worker processes (SIGTERM: no traceback) so that Beam, which waits
    for them, unwinds at once. Linux (/proc); elsewhere the launcher's grace period ends the
    run. Returns how many were signalled."""
    me, stopped = os.getpid(), 0
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == me and b"deid.beam.worker" in command:
            try:
                os.kill(pid, signal.SIGTERM)
                stopped += 1
            except OSError:
                pass
    return stopped


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), daemon=True).start()
    runpy.run_module("apache_beam.runners.worker.sdk_worker_main", run_name="__main__")


if __name__ == "__main__":
    main()

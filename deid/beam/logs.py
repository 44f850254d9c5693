"""Logging for a run: our own lines at INFO, Beam's at WARNING.

With --direct_running_mode=multi_processing, worker processes send their log records to the
runner, which logs each as `Worker: <protobuf text>` at the record's level. This filter turns
our workers' records (progress, warnings) back into plain lines and drops Beam's worker noise.
"""

from __future__ import annotations

import logging
import os
import re
import sys

WORKER_LOGGER = "apache_beam.runners.portability.local_job_service"
NOISE = ("Discarding unparseable args", "No semi_persistent_directory")


def _field(text: str, name: str) -> str:
    match = re.search(name + r': "((?:[^"\\]|\\.)*)"', text)
    if not match:
        return ""
    raw = match.group(1)
    try:  # protobuf text escapes: \" \\ \n and octal bytes of UTF-8
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape") \
            .encode("latin-1").decode("utf-8", "replace")
    except (UnicodeError, ValueError):
        return raw


class WorkerLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Worker: %s" or not record.args:
            return True
        text = str(record.args[0])
        message, location = _field(text, "message"), _field(text, "log_location")
        ours = "/deid/" in location.replace("\\", "/")
        if not ours and (record.levelno < logging.WARNING or any(n in message for n in NOISE)):
            return False
        record.name, record.msg, record.args = "deid.worker", "%s", (message,)
        return True


class FirstLineFilter(logging.Filter):
    """Beam's records in one line each, without tracebacks (a failing or interrupted run
    logs dozens of lines); DEID_DEBUG=1 keeps them whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("deid") or os.environ.get("DEID_DEBUG"):
            return True
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        message = record.getMessage().strip().splitlines()
        record.msg, record.args = (message[0] if message else ""), None
        return True


def configure() -> None:
    """Root at WARNING unless the caller configured logging; `deid` loggers at INFO; Beam's
    records on our handler in one line each."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for handler in root.handlers:
            handler.addFilter(FirstLineFilter())
    logging.getLogger("deid").setLevel(logging.INFO)
    worker = logging.getLogger(WORKER_LOGGER)
    worker.setLevel(logging.INFO)
    if not any(isinstance(f, WorkerLogFilter) for f in worker.filters):
        worker.addFilter(WorkerLogFilter())

"""Keep pydicom from printing values: its warnings and log records quote element values
(e.g. "Invalid value for VR UI: '1.2.3...'"), and values may identify a patient."""

from __future__ import annotations

import logging
import threading
import warnings

from pydicom import config

_TRUNCATED = ("Unexpected end of file", "End of file reached before delimiter")
_state = threading.local()


class _DropRecords(logging.Filter):
    """Drops every pydicom record, noting (per thread) whether one said the data ended inside
    an element: pydicom then returns what it could read instead of raising."""

    def filter(self, record: logging.LogRecord) -> bool:
        if any(text in str(record.msg) for text in _TRUNCATED):
            _state.truncated = True
        return False


def reset_truncation() -> None:
    """Start watching this thread's reads for truncated data."""
    _state.truncated = False


def truncation_seen() -> bool:
    """Whether pydicom met the end of the data inside an element since the last reset."""
    return getattr(_state, "truncated", False)


def silence_pydicom() -> None:
    """Validate nothing on read or write (the engine checks what it writes itself), and drop
    pydicom's warnings and log records, whatever the application's logging level."""
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, _DropRecords) for f in logger.filters):
        logger.addFilter(_DropRecords())
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")

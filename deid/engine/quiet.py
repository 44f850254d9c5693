"""Keep pydicom from printing values: its warnings and log records quote element values
(e.g. "Invalid value for VR UI: '1.2.3...'"), and values may identify a patient."""

from __future__ import annotations

import logging
import warnings

from pydicom import config


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def silence_pydicom() -> None:
    """Validate nothing on read or write (the engine checks what it writes itself), and drop
    pydicom's warnings and log records, whatever the application's logging level."""
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, _DropRecords) for f in logger.filters):
        logger.addFilter(_DropRecords())
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")

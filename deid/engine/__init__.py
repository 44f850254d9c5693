"""The engine: a profile applied to one instance. Never imports Beam."""

from deid.engine.quiet import silence_pydicom

silence_pydicom()

from deid.engine.core import Decision, Deidentified, Rejected, deidentify_dataset  # noqa: E402
from deid.engine.files import (  # noqa: E402
    Output,
    Rejection,
    deidentify_bytes,
    read_dataset,
    write_dataset,
)
from deid.engine.stream import deidentify_stream  # noqa: E402

__all__ = ["Decision", "Deidentified", "Output", "Rejected", "Rejection", "deidentify_bytes",
           "deidentify_dataset", "deidentify_stream", "read_dataset", "write_dataset"]

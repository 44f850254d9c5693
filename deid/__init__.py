"""DICOM de-identification by PS3.15 Annex E profiles."""

__version__ = "0.1.0"
# Files larger than this many MiB are streamed, their pixel data never held in memory.
STREAM_THRESHOLD_MB = 256

"""DICOM de-identification by PS3.15 Annex E profiles."""

__version__ = "0.1.0"

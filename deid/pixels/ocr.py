"""Optional text detection with Tesseract OCR: never the only safeguard, a check that finds text
a rule missed, and the boxes of a redaction mode."""

from __future__ import annotations

import shutil

from pydicom.dataset import Dataset

from deid.pixels.model import PixelError, Region


def ocr_available() -> bool:
    """Whether pytesseract is installed and the tesseract program is on PATH."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def find_text(dataset: Dataset, transfer_syntax: str) -> list[Region]:
    """Boxes where Tesseract finds text in any frame (frames set). Raises PixelError
    (reason 'ocr_unavailable') when Tesseract is missing. Never returns or logs the text."""
    if not ocr_available():
        raise PixelError("ocr_unavailable", "text detection needs pytesseract and the "
                         "tesseract program (Debian package tesseract-ocr)")
    raise PixelError("ocr_unavailable", "text detection is not implemented yet")

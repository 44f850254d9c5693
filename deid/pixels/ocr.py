"""Optional text detection with Tesseract OCR: a check that finds text a rule missed, and the
boxes of a redaction mode. Never the only safeguard: OCR misses small, rotated or faint text.

pytesseract hands each rendered frame to the tesseract program through a temporary file,
which it deletes; the recognised text is read only to tell words from noise and is never
returned or logged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset

from deid.pixels.image import REQUIRED, read_image
from deid.pixels.model import PixelError, Region

MIN_CONFIDENCE = 60  # Tesseract's word confidence, 0-100; lower finds noise in textures
SMALL = 256  # frames with fewer rows are enlarged twice: Tesseract wants text ~20 pixels high
TOO_SMALL = 8  # frames with fewer rows or columns hold no legible text
MARGIN = 2  # pixels added around each word's box
SECONDS_PER_FRAME = 60
VIEW_ATTRIBUTES = (*REQUIRED, "NumberOfFrames", "PlanarConfiguration", "HighBit",
                   "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                   "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                   "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
                   "SegmentedRedPaletteColorLookupTableData",
                   "SegmentedGreenPaletteColorLookupTableData",
                   "SegmentedBluePaletteColorLookupTableData", "ExtendedOffsetTable",
                   "ExtendedOffsetTableLengths", "PixelData")


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
    frames_of_box: dict[tuple[int, int, int, int], list[int]] = {}
    for number, gray in _rendered(dataset, transfer_syntax):
        for box in _words(gray):
            frames_of_box.setdefault(box, []).append(number)
    return [Region(*box, frames=tuple(frames)) for box, frames in frames_of_box.items()]


def _rendered(dataset: Dataset, syntax: str) -> Iterator[tuple[int, np.ndarray]]:
    """Each frame (1-based number) as 8-bit grey, one frame decoded at a time."""
    from pydicom.pixels import pixel_array
    from pydicom.pixels.processing import apply_color_lut

    image = read_image(dataset)
    view = Dataset()  # the pixel attributes only, with the syntax the caller gives
    for keyword in VIEW_ATTRIBUTES:
        if keyword in dataset:
            view[keyword] = dataset[keyword]
    view.file_meta = FileMetaDataset()
    view.file_meta.TransferSyntaxUID = syntax
    for index in range(image.frames):
        try:
            arr = pixel_array(view, index=index)  # YCbCr converted to RGB
            if image.photometric == "PALETTE COLOR":
                arr = apply_color_lut(arr, view)
        except Exception as exc:  # decoders raise many kinds; their messages are not shown
            raise PixelError("decode_failed", f"a frame in transfer syntax {syntax} cannot be "
                             f"decoded ({type(exc).__name__})") from None
        yield index + 1, _grey(arr.astype(np.float64), image.photometric == "MONOCHROME1")


def _grey(arr: np.ndarray, inverted: bool) -> np.ndarray:
    """Luma stretched to 0-255, displayed as on screen (MONOCHROME1 inverted)."""
    if arr.ndim == 3:
        arr = arr @ np.array([0.299, 0.587, 0.114])
    low, high = float(arr.min()), float(arr.max())
    grey = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    return (255 - grey if inverted else grey).astype(np.uint8)


def _words(grey: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
    """(left, top, width, height) of each word Tesseract reads, in frame coordinates."""
    import pytesseract
    from PIL import Image

    if min(grey.shape) < TOO_SMALL:
        return  # no legible text fits, and Tesseract refuses such images
    scale = 2 if grey.shape[0] < SMALL else 1
    picture = Image.fromarray(255 - grey)  # dark text on light ground reads best
    if scale > 1:
        picture = picture.resize((grey.shape[1] * scale, grey.shape[0] * scale),
                                 Image.Resampling.LANCZOS)
    try:
        # --psm 11: sparse text, the way annotations are scattered over an image; Sauvola's
        # local thresholds find text that is only a little brighter than what is around it
        found = pytesseract.image_to_data(picture, config="--psm 11 -c thresholding_method=2",
                                          output_type=pytesseract.Output.DICT,
                                          timeout=SECONDS_PER_FRAME)
    except (pytesseract.TesseractError, RuntimeError) as exc:
        raise PixelError("ocr_failed", f"tesseract failed on a frame ({type(exc).__name__})")\
            from None
    rows, columns = grey.shape
    for text, confidence, left, top, width, height in zip(
            found["text"], found["conf"], found["left"], found["top"], found["width"],
            found["height"], strict=True):
        if float(confidence) < MIN_CONFIDENCE or sum(c.isalnum() for c in text) < 2:
            continue
        x0, y0 = max(left // scale - MARGIN, 0), max(top // scale - MARGIN, 0)
        x1 = min(-(-(left + width) // scale) + MARGIN, columns)
        y1 = min(-(-(top + height) // scale) + MARGIN, rows)
        yield x0, y0, x1 - x0, y1 - y0

"""Images with text drawn into them, for the pixel-cleaning tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from deid.pixels import Region


def pydicom_file(name: str) -> Dataset:
    """One of the test files shipped inside pydicom."""
    return dcmread(get_testdata_file(name))


def transfer_syntax(ds: Dataset) -> str:
    return str(ds.file_meta.TransferSyntaxUID)


def text_mask(rows: int, columns: int, text: str, left: int, top: int,
              size: int = 24) -> tuple[np.ndarray, Region]:
    """The pixels of `text` drawn at (left, top), and the Region that bounds them."""
    canvas = Image.new("L", (columns, rows), 0)
    ImageDraw.Draw(canvas).text((left, top), text, fill=255,
                                font=ImageFont.load_default(size=size))
    mask = np.asarray(canvas) > 127
    ys, xs = np.nonzero(mask)
    assert ys.size, "the text fell outside the image"
    box = Region(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                 int(ys.max() - ys.min() + 1))
    return mask, box


def inside(region: Region, rows: int, columns: int) -> np.ndarray:
    """The region as a boolean mask of one frame."""
    mask = np.zeros((rows, columns), dtype=bool)
    mask[region.top:region.top + region.height, region.left:region.left + region.width] = True
    return mask

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


def frames_of(ds: Dataset, *, raw: bool = True) -> np.ndarray:
    """Every frame as (frames, rows, columns[, samples]); raw keeps YCbCr as stored."""
    from pydicom.pixels import pixel_array

    arr = pixel_array(ds, raw=raw)
    single = int(ds.get("NumberOfFrames") or 1) == 1
    return arr[None] if single else arr


def draw_text(ds: Dataset, text: str, left: int, top: int, size: int = 24,
              frames: tuple[int, ...] | None = None) -> Region:
    """Draw `text` in the brightest value into the given frames (1-based; None: all), written
    back in the dataset's own transfer syntax (pydicom's encoders for compressed ones), and
    return the Region that bounds it."""
    from pydicom.pixels import compress
    from pydicom.pixels.utils import pack_bits

    arr = frames_of(ds)
    mask, box = text_mask(ds.Rows, ds.Columns, text, left, top, size)
    bright = {"MONOCHROME1": 0, "YBR_FULL": (255, 128, 128)}.get(
        ds.PhotometricInterpretation, (1 << (ds.BitsStored - ds.PixelRepresentation)) - 1)
    for index in range(arr.shape[0]):
        if frames is None or index + 1 in frames:
            arr[index][mask] = bright
    syntax = transfer_syntax(ds)
    single = arr[0] if arr.shape[0] == 1 else arr
    if ds.PhotometricInterpretation == "YBR_FULL_422" and not ds.file_meta.TransferSyntaxUID.\
            is_compressed:  # native Y Y Cb Cr: the text goes into the luma only
        raw = np.frombuffer(ds.PixelData, np.uint8).copy().reshape(-1, ds.Rows,
                                                                   ds.Columns // 2, 4)
        luma = raw[..., :2].reshape(-1, ds.Rows, ds.Columns)  # a view into raw
        for index in range(luma.shape[0]):
            if frames is None or index + 1 in frames:
                luma[index][mask] = 255
        ds.PixelData = raw.tobytes()
    elif ds.file_meta.TransferSyntaxUID.is_compressed:
        if ds.PhotometricInterpretation in ("YBR_RCT", "YBR_ICT"):
            ds.PhotometricInterpretation = "RGB"  # as decoded; the encoder keeps RGB
        compress(ds, syntax, arr=single, generate_instance_uid=False)
    elif ds.BitsAllocated == 1:
        ds.PixelData = pack_bits(arr)
    else:
        assert ds.file_meta.TransferSyntaxUID.is_little_endian
        ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    return box

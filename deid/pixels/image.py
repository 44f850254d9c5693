"""The Image Pixel module attributes blanking depends on, checked, and what "blank" means.

Blank is the value that displays black (PS3.3 C.7.6.3.1.2 defines the interpretations):

| Photometric Interpretation | blank |
|---|---|
| MONOCHROME2 | the smallest value Bits Stored can hold (0, or -2^(BitsStored-1) when signed) |
| MONOCHROME1 | the largest value Bits Stored can hold (MONOCHROME1 displays it black) |
| RGB | 0 in every sample |
| YBR_FULL, YBR_FULL_422 | Y 0, Cb and Cr at the middle of their range (2^(BitsStored-1)) |
| YBR_RCT, YBR_ICT | as RGB: their codecs decode to RGB |
| PALETTE COLOR | the index whose palette entry is darkest (smallest luma), first of ties |

The stored extremes are chosen over the image's own minimum or maximum so that the blank is
the same in every instance and does not depend on the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from deid.pixels.model import PixelError

REQUIRED = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
            "PixelRepresentation", "PhotometricInterpretation")
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")
FLOAT_PIXELS = {0x7FE00008: "(7FE0,0008) Float Pixel Data",
                0x7FE00009: "(7FE0,0009) Double Float Pixel Data"}


@dataclass(frozen=True)
class Image:
    """The checked geometry and encoding of an instance's Pixel Data."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int

    def blank(self, dataset: Dataset) -> tuple[int, ...]:
        """The value (one per sample) that displays black; see the module's table."""
        if self.photometric == "PALETTE COLOR":
            return (darkest_palette_index(dataset),)
        if self.photometric == "MONOCHROME1":
            return (self.maximum,)
        if self.photometric == "MONOCHROME2":
            return (self.minimum,)
        if self.photometric.startswith("YBR_FULL"):
            return (0, 1 << (self.bits_stored - 1), 1 << (self.bits_stored - 1))
        return (0,) * self.samples

    @property
    def minimum(self) -> int:
        return -(1 << (self.bits_stored - 1)) if self.signed else 0

    @property
    def maximum(self) -> int:
        return (1 << (self.bits_stored - 1 if self.signed else self.bits_stored)) - 1


def read_image(dataset: Dataset) -> Image:
    """The Image Pixel attributes of `dataset`, checked. Raises PixelError."""
    for tag, name in FLOAT_PIXELS.items():
        if tag in dataset:
            raise PixelError("float_pixel_data", f"{name} cannot be cleaned")
    if "PixelData" not in dataset:
        raise PixelError("no_pixel_data", "(7FE0,0010) Pixel Data is absent")
    missing = [keyword for keyword in REQUIRED if dataset.get(keyword) in (None, "")]
    if missing:
        raise PixelError("missing_attribute", f"{', '.join(missing)} absent or empty")
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        raise PixelError("invalid_attribute", "(0028,0008) Number of Frames is not a number")\
            from None
    image = Image(
        rows=int(dataset.Rows), columns=int(dataset.Columns), frames=frames,
        samples=int(dataset.SamplesPerPixel), bits_allocated=int(dataset.BitsAllocated),
        bits_stored=int(dataset.BitsStored), signed=int(dataset.PixelRepresentation) == 1,
        photometric=str(dataset.PhotometricInterpretation).strip(),
        planar=int(dataset.get("PlanarConfiguration") or 0))
    _check(image, dataset)
    return image


def check_native(image: Image) -> None:
    """YBR_RCT and YBR_ICT exist only inside JPEG 2000 codestreams (PS3.3 C.7.6.3.1.2)."""
    if image.photometric in ("YBR_RCT", "YBR_ICT"):
        raise PixelError("unsupported_photometric_interpretation", "(0028,0004) Photometric "
                         "Interpretation YBR_RCT or YBR_ICT with a native transfer syntax")


def _check(image: Image, dataset: Dataset) -> None:
    if min(image.rows, image.columns, image.frames) < 1:
        raise PixelError("invalid_attribute", "Rows, Columns or Number of Frames is not positive")
    if image.bits_allocated not in (1, 8, 16, 32) or not 1 <= image.bits_stored <= \
            image.bits_allocated:
        raise PixelError("unsupported_bit_depth", "(0028,0100) Bits Allocated or (0028,0101) "
                         "Bits Stored is not supported")
    high_bit = dataset.get("HighBit")
    if high_bit is not None and int(high_bit) != image.bits_stored - 1:
        raise PixelError("unsupported_bit_depth", "(0028,0102) High Bit is not Bits Stored - 1")
    expected = 1 if image.photometric in MONOCHROME + ("PALETTE COLOR",) else 3
    if image.photometric not in MONOCHROME + COLOR + ("PALETTE COLOR",):
        raise PixelError("unsupported_photometric_interpretation",
                         "(0028,0004) Photometric Interpretation is not supported")
    if image.samples != expected:
        raise PixelError("invalid_attribute", "(0028,0002) Samples per Pixel does not match "
                         "(0028,0004) Photometric Interpretation")


def darkest_palette_index(dataset: Dataset) -> int:
    """The stored value whose Red, Green and Blue Palette Color Lookup Table entries have the
    smallest luma (ITU-R BT.601 weights): black when the palette has black."""
    from pydicom.pixels.processing import apply_color_lut

    descriptor = dataset.get("RedPaletteColorLookupTableDescriptor")
    if descriptor is None or len(descriptor) != 3:
        raise PixelError("missing_attribute",
                         "(0028,1101) Red Palette Color Lookup Table Descriptor absent")
    entries, first = int(descriptor[0]) or 65536, int(descriptor[1])
    indices = np.arange(first, first + entries, dtype=np.int64)
    indices = indices[indices < (1 << int(dataset.BitsStored))]
    try:
        rgb = apply_color_lut(indices.astype(np.uint16), dataset).astype(np.float64)
    except Exception as exc:  # a malformed palette: pydicom raises several kinds
        raise PixelError("invalid_palette", "(0028,1201)-(0028,1203) palette lookup tables "
                         f"cannot be read ({type(exc).__name__})") from None
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return int(indices[int(np.argmin(luma))])

"""Blanking natively encoded Pixel Data in its own bytes (PS3.5 8.1.1, 8.2): every pixel
outside the masks keeps its exact bytes, including unused high bits. Also used for Overlay
Data (PS3.3 C.9.2), which is packed like 1-bit pixels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.utils import expand_ybr422

from deid.pixels.image import Image
from deid.pixels.model import PixelError


@dataclass(frozen=True)
class NativePixels:
    """A native value checked against its image: exactly the frames' bytes, in logical order."""

    data: bytes
    image: Image
    little_endian: bool
    swapped: bool  # 8-bit values stored as OW in big endian come in swapped byte pairs


def native_pixels(dataset: Dataset, image: Image, little_endian: bool,
                  keyword: str | int = "PixelData") -> NativePixels:
    """The value of `keyword`, checked to hold every frame (PS3.5 8.1.1); bytes beyond the
    last frame (excess padding) are dropped. YBR_FULL_422 is expanded to YBR_FULL (PS3.3
    C.7.6.3.1.2), so that no pixel outside a mask shares chroma with a blanked one."""
    if dataset[keyword].is_undefined_length:
        raise PixelError("pixel_data_encoding", "(7FE0,0010) Pixel Data is encapsulated while "
                         "the transfer syntax is native")
    # 8-bit data as OW in big endian is stored in swapped byte pairs (PS3.5 A.3)
    swapped = not little_endian and image.bits_allocated <= 8 and dataset[keyword].VR == "OW"
    data = dataset[keyword].value
    data = _swap_pairs(data) if swapped else data
    subsampled = image.photometric == "YBR_FULL_422"
    samples = 2 if subsampled else image.samples  # YBR_FULL_422 stores Y Y Cb Cr per 2 pixels
    values = image.rows * image.columns * samples * image.frames
    expected = (values + 7) // 8 if image.bits_allocated == 1 else \
        values * image.bits_allocated // 8
    if len(data) < expected:
        tag = dataset[keyword].tag
        raise PixelError("pixel_data_length", f"({tag.group:04X},{tag.elem:04X}) holds "
                         f"{len(data)} bytes where the image attributes need {expected}")
    data = data[:expected]
    if subsampled:
        if image.bits_allocated != 8 or image.planar != 0 or image.columns % 2:
            raise PixelError("unsupported_photometric_interpretation", "YBR_FULL_422 needs 8 "
                             "bits, Planar Configuration 0 and an even number of Columns")
        data = expand_ybr422(data, image.bits_allocated)
        image = replace(image, photometric="YBR_FULL")
    return NativePixels(data, image, little_endian, swapped)


def blank_native(dataset: Dataset, pixels: NativePixels, masks: Mapping[int, np.ndarray],
                 blank: tuple[int, ...], keyword: str | int = "PixelData") -> None:
    """Set the masked pixels (frame number -> mask) to `blank` in `keyword`, in place, with
    the even padding DICOM requires."""
    image = pixels.image
    if image.bits_allocated == 1:
        blanked = _blank_bits(pixels.data, image, masks, blank[0])
    else:
        blanked = _blank_words(pixels.data, image, pixels.little_endian, masks, blank)
    blanked += b"\x00" * (len(blanked) % 2)
    dataset[keyword].value = _swap_pairs(blanked) if pixels.swapped else blanked


def _swap_pairs(data: bytes) -> bytes:
    padded = data + b"\x00" * (len(data) % 2)
    return np.frombuffer(padded, np.uint16).byteswap().tobytes()


def _blank_bits(data: bytes, image: Image, masks: Mapping[int, np.ndarray], blank: int) -> bytes:
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
    size = image.rows * image.columns
    for frame, mask in masks.items():
        pixels = bits[(frame - 1) * size:frame * size].reshape(image.rows, image.columns)
        pixels[mask] = blank & 1
    return np.packbits(bits, bitorder="little").tobytes()


def _blank_words(data: bytes, image: Image, little_endian: bool,
                 masks: Mapping[int, np.ndarray], blank: tuple[int, ...]) -> bytes:
    dtype = np.dtype(f"{'<' if little_endian else '>'}u{image.bits_allocated // 8}")
    words = np.frombuffer(data, dtype).copy()
    if image.planar:
        pixels = words.reshape(image.frames, image.samples, image.rows, image.columns)
    else:
        pixels = words.reshape(image.frames, image.rows, image.columns, image.samples)
    # Two's complement in Bits Allocated: a signed blank is stored sign-extended.
    raw = [value & ((1 << image.bits_allocated) - 1) for value in blank]
    for frame, mask in masks.items():
        for sample, value in enumerate(raw):
            if image.planar:
                pixels[frame - 1, sample][mask] = value
            else:
                pixels[frame - 1, ..., sample][mask] = value
    return words.tobytes()

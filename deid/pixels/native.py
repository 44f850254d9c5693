"""Blanking natively encoded Pixel Data in its own bytes (PS3.5 8.1.1, 8.2): every pixel
outside the masks keeps its exact bytes, including unused high bits and the padding byte."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.utils import expand_ybr422

from deid.pixels.image import Image
from deid.pixels.model import PixelError


def frame_length(image: Image, *, subsampled: bool = False) -> int:
    """Bytes of one frame; bits for Bits Allocated 1 (frames of 1-bit data are not byte
    aligned, PS3.5 8.1.1)."""
    samples = 2 if subsampled else image.samples  # YBR_FULL_422 stores Y Y Cb Cr per 2 pixels
    values = image.rows * image.columns * samples
    return values if image.bits_allocated == 1 else values * image.bits_allocated // 8


def blank_native(dataset: Dataset, image: Image, little_endian: bool,
                 masks: Mapping[int, np.ndarray], blank: tuple[int, ...]) -> Image:
    """Set the masked pixels (frame number -> mask) to `blank` in Pixel Data, in place; bytes
    beyond the last frame (excess padding) are dropped, even padding added. YBR_FULL_422 is
    first expanded to YBR_FULL (PS3.3 C.7.6.3.1.2), so that no pixel outside the masks shares
    chroma with a blanked one; returns the image as now encoded."""
    # 8-bit data as OW in big endian is stored in swapped byte pairs (PS3.5 A.3)
    swapped = not little_endian and image.bits_allocated == 8 and \
        dataset["PixelData"].VR == "OW"
    data = _swap_pairs(dataset.PixelData) if swapped else dataset.PixelData
    subsampled = image.photometric == "YBR_FULL_422"
    expected = frame_length(image, subsampled=subsampled) * image.frames
    if image.bits_allocated == 1:
        expected = (expected + 7) // 8
    if len(data) < expected:
        raise PixelError("pixel_data_length", f"(7FE0,0010) Pixel Data holds {len(data)} "
                         f"bytes where the image attributes need {expected}")
    data = data[:expected]  # bytes beyond the last frame are no pixel: they are dropped
    if subsampled:
        if image.bits_allocated != 8 or image.planar != 0 or image.columns % 2:
            raise PixelError("unsupported_photometric_interpretation", "YBR_FULL_422 needs 8 "
                             "bits, Planar Configuration 0 and an even number of Columns")
        data = expand_ybr422(data[:expected], image.bits_allocated)
        image = Image(**{**image.__dict__, "photometric": "YBR_FULL"})
        dataset.PhotometricInterpretation = "YBR_FULL"
    if image.bits_allocated == 1:
        blanked = _blank_bits(data, image, masks, blank[0])
    else:
        blanked = _blank_words(data, image, little_endian, masks, blank)
    blanked += b"\x00" * (len(blanked) % 2)
    dataset.PixelData = _swap_pairs(blanked) if swapped else blanked
    return image


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

"""Blanking encapsulated (compressed) Pixel Data (PS3.5 A.4): decode only the frames a region
touches, blank, and write back.

- Lossless syntaxes pydicom can encode (RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless)
  are re-encoded in the same syntax, frame by frame; untouched frames keep their bytes, and
  every re-encoded frame must decode to exactly the blanked array.
- Other lossless syntaxes (JPEG Lossless, HTJ2K Lossless, ...), and images the encoder
  refuses (RLE of 32-bit colour) or would not reproduce exactly, are written as Explicit VR
  Little Endian.
- Lossy syntaxes are never re-compressed (a second lossy pass would degrade the image, PS3.5
  8.2 and PS3.3 C.7.6.1.1.5): they are written as Explicit VR Little Endian, YCbCr converted
  to RGB, with Lossy Image Compression "01" and its method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from deid.pixels.image import Image
from deid.pixels.model import Cleaned, PixelError

REENCODED = (RLELossless, JPEGLSLossless, JPEG2000Lossless)
# Lossy (or possibly lossy) syntaxes and their Lossy Image Compression Method (PS3.3
# C.7.6.1.1.5.1). JPEG 2000, HTJ2K (not "Lossless Only") and JPEG-LS Near-Lossless may also
# hold lossless data: counted as lossy unless Lossy Image Compression says "00".
LOSSY_METHOD = {JPEGBaseline8Bit: "ISO_10918_1", JPEGExtended12Bit: "ISO_10918_1",
                JPEGLSNearLossless: "ISO_14495_1", JPEG2000: "ISO_15444_1",
                HTJ2K: "ISO_15444_15"}
ALWAYS_LOSSY = (JPEGBaseline8Bit, JPEGExtended12Bit)
OFFSET_TABLES = ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")


def encapsulated_frames(dataset: Dataset, syntax: str, image: Image) -> list[bytes]:
    """The encoded frames of Pixel Data, once a decoder for `syntax` is known to be installed.
    Raises PixelError."""
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise PixelError("unsupported_transfer_syntax",
                         f"pixels in transfer syntax {syntax} cannot be decoded") from None
    if not decoder.is_available:
        raise PixelError("decoder_unavailable", f"no decoder for transfer syntax {syntax} is "
                         "installed (the pixels extra: pylibjpeg and its plugins, pyjpegls)")
    offsets = None
    if all(keyword in dataset for keyword in OFFSET_TABLES):
        offsets = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
    try:
        frames = list(generate_frames(dataset.PixelData, number_of_frames=image.frames,
                                      extended_offsets=offsets))
    except Exception as exc:  # pydicom raises several kinds for broken encapsulation
        raise PixelError("decode_failed", "(7FE0,0010) Pixel Data is not valid encapsulated "
                         f"data ({type(exc).__name__})") from None
    if len(frames) != image.frames:
        raise PixelError("pixel_data_length", f"(7FE0,0010) Pixel Data holds {len(frames)} "
                         f"frames where (0028,0008) Number of Frames says {image.frames}")
    return frames


def blank_encapsulated(dataset: Dataset, syntax: str, image: Image, frames: list[bytes],
                       masks: Mapping[int, np.ndarray]) -> Cleaned:
    """Set the masked pixels (frame number -> mask) of the encoded `frames` to the blank that
    displays black, in place; returns the syntax the dataset must now be written with."""
    if syntax in REENCODED and get_encoder(syntax).is_available:
        try:
            reencoded = {number: _reencode(dataset, frames[number - 1], syntax, image, mask)
                         for number, mask in masks.items()}
        except _NotReproduced:
            pass  # written uncompressed below
        else:
            for number, frame in reencoded.items():
                frames[number - 1] = frame
            _set_pixel_data(dataset, encapsulate(frames, has_bot=True), syntax)
            return Cleaned(syntax, len(masks))
    lossy = syntax in LOSSY_METHOD
    decoded = []
    for number, frame in enumerate(frames, start=1):
        # lossy YCbCr becomes RGB (as viewers show it); lossless data keeps its exact values
        arr, now = _decode(frame, syntax, image, raw=not lossy)
        if number in masks:
            _blank(arr, masks[number], now.blank(dataset))
        decoded.append(arr)
    dtype = f"<{'i' if image.signed else 'u'}{image.bits_allocated // 8}"
    _set_pixel_data(dataset, np.stack(decoded).astype(dtype).tobytes(), ExplicitVRLittleEndian)
    dataset["PixelData"].VR = "OW" if image.bits_allocated > 8 else "OB"
    dataset.PhotometricInterpretation = now.photometric
    if image.samples > 1:
        dataset.PlanarConfiguration = 0  # decoders return colour-by-pixel
    if lossy and (syntax in ALWAYS_LOSSY or dataset.get("LossyImageCompression") != "00"):
        dataset.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in dataset:
            dataset.LossyImageCompressionMethod = LOSSY_METHOD[syntax]
    return Cleaned(ExplicitVRLittleEndian, len(masks))


def _options(image: Image) -> dict[str, object]:
    return {"rows": image.rows, "columns": image.columns, "samples_per_pixel": image.samples,
            "bits_allocated": image.bits_allocated, "bits_stored": image.bits_stored,
            "pixel_representation": int(image.signed),
            "photometric_interpretation": image.photometric,
            "planar_configuration": image.planar, "number_of_frames": 1}


def _decode(frame: bytes, syntax: str, image: Image, *,
            raw: bool) -> tuple[np.ndarray, Image]:
    """One frame as an array, and the image as decoded (a JPEG 2000 YBR_RCT or YBR_ICT frame
    decodes to RGB; without `raw`, YCbCr is converted to RGB)."""
    try:
        arr, properties = get_decoder(syntax).as_array(encapsulate([frame]), raw=raw,
                                                       **_options(image))
    except Exception as exc:  # decoders raise many kinds; their messages are not shown
        raise PixelError("decode_failed", f"a frame in transfer syntax {syntax} cannot be "
                         f"decoded ({type(exc).__name__})") from None
    photometric = str(properties.get("photometric_interpretation", image.photometric))
    if arr.shape[:2] != (image.rows, image.columns):
        raise PixelError("decode_failed", "a decoded frame does not match (0028,0010) Rows "
                         "and (0028,0011) Columns")
    return arr, replace(image, photometric=photometric, planar=0)


def _blank(arr: np.ndarray, mask: np.ndarray, blank: tuple[int, ...]) -> None:
    arr[mask] = blank if arr.ndim == 3 else blank[0]


class _NotReproduced(Exception):
    """The encoder refused a frame or did not give back exactly the blanked pixels."""


def _reencode(dataset: Dataset, frame: bytes, syntax: str, image: Image,
              mask: np.ndarray) -> bytes:
    """The frame decoded, blanked and encoded again in `syntax`, checked by decoding."""
    arr, decoded = _decode(frame, syntax, image, raw=True)
    _blank(arr, mask, decoded.blank(dataset))
    try:
        # The stored interpretation: RGB data declared YBR_RCT is encoded with the reversible
        # colour transform (PS3.5 8.2.4), as the source was.
        encoded = get_encoder(syntax).encode(arr, **_options(image))
        check, _ = _decode(encoded, syntax, image, raw=True)
    except Exception:  # the encoder's refusal, or a codestream its decoder cannot read
        raise _NotReproduced() from None
    if not np.array_equal(check, arr):
        raise _NotReproduced()
    return encoded


def _set_pixel_data(dataset: Dataset, value: bytes, syntax: str) -> None:
    for keyword in OFFSET_TABLES:
        if keyword in dataset:
            del dataset[keyword]
    dataset.PixelData = value
    dataset["PixelData"].is_undefined_length = syntax != ExplicitVRLittleEndian
    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        meta.TransferSyntaxUID = syntax

"""blank_regions: the Clean Pixel Data Option's pixel work (PS3.15 E.3.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from deid.pixels.encapsulated import blank_encapsulated, encapsulated_frames
from deid.pixels.image import Image, check_native, read_image
from deid.pixels.model import Cleaned, PixelError, Region
from deid.pixels.native import blank_native, native_pixels
from deid.pixels.overlays import blank_overlays
from deid.pixels.regions import check_regions, frame_mask

# Native transfer syntaxes and whether they are little endian (PS3.5 A.1-A.5); every
# encapsulated syntax is explicit VR little endian (PS3.5 A.4).
NATIVE = {ImplicitVRLittleEndian: True, ExplicitVRLittleEndian: True,
          DeflatedExplicitVRLittleEndian: True, ExplicitVRBigEndian: False}


def blank_regions(dataset: Dataset, transfer_syntax: str, regions: Sequence[Region], *,
                  keep_only: Sequence[Region] = ()) -> Cleaned:
    """Blank `regions`, and, when `keep_only` is given, every pixel outside the union of those
    regions, in the dataset's Pixel Data, in place (Pixel Data and any attributes the new
    encoding needs: PhotometricInterpretation, PlanarConfiguration, LossyImageCompression
    kept, ...). Raises PixelError.

    What the dataset still holds besides Pixel Data is cleaned too, so call this after the
    profile's attribute rules: Overlay Data (60xx,3000) is blanked in the same regions, and an
    Icon Image Sequence (0088,0200), whose thumbnail need not map onto the image (PS3.3
    C.7.6.1.1.6), is blanked whole."""
    if not regions and not keep_only:
        return Cleaned(transfer_syntax, 0)  # nothing asked: the pixels are not even decoded
    image = read_image(dataset)
    check_regions([*regions, *keep_only], image.rows, image.columns, image.frames)
    little_endian = NATIVE.get(transfer_syntax, True)
    if transfer_syntax in NATIVE:
        check_native(image)
        pixels = native_pixels(dataset, image, little_endian)  # checked before any mask
        masks = _masks(image, regions, keep_only)
        if masks:
            blank_native(dataset, pixels, masks, pixels.image.blank(dataset))
            dataset.PhotometricInterpretation = pixels.image.photometric  # 4:2:2 expanded
        cleaned = Cleaned(transfer_syntax, len(masks))
    else:
        frames = encapsulated_frames(dataset, transfer_syntax, image)
        masks = _masks(image, regions, keep_only)
        # no pixel to blank (keep_only covers every frame): the encoding stays as it was
        cleaned = blank_encapsulated(dataset, transfer_syntax, image, frames, masks) if masks \
            else Cleaned(transfer_syntax, 0)
    blank_overlays(dataset, little_endian, regions, keep_only)
    _blank_icons(dataset, little_endian)
    return cleaned


def _masks(image: Image, regions: Sequence[Region],
           keep_only: Sequence[Region]) -> dict[int, np.ndarray]:
    """Frame number -> the pixels to blank, for the frames that have any."""
    masks = {}
    for frame in range(1, image.frames + 1):
        mask = frame_mask(frame, image.rows, image.columns, regions, keep_only)
        if mask is not None:
            masks[frame] = mask
    return masks


def _blank_icons(dataset: Dataset, little_endian: bool) -> None:
    for item in dataset.get("IconImageSequence") or []:
        if "PixelData" not in item:
            continue
        if item["PixelData"].is_undefined_length:
            raise PixelError("icon_image_encapsulated", "(0088,0200) Icon Image Sequence holds "
                             "compressed pixels, which are not cleaned; remove it")
        icon = read_image(item)
        pixels = native_pixels(item, icon, little_endian)
        whole = np.ones((icon.rows, icon.columns), dtype=bool)
        blank_native(item, pixels, dict.fromkeys(range(1, icon.frames + 1), whole),
                     pixels.image.blank(item))
        item.PhotometricInterpretation = pixels.image.photometric

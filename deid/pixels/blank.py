"""blank_regions: the Clean Pixel Data Option's pixel work (PS3.15 E.3.1)."""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from deid.pixels.encapsulated import blank_encapsulated
from deid.pixels.image import read_image
from deid.pixels.model import Cleaned, Region
from deid.pixels.native import blank_native
from deid.pixels.regions import check_regions, frame_mask

# Native transfer syntaxes and whether they are little endian (PS3.5 A.1-A.5).
NATIVE = {ImplicitVRLittleEndian: True, ExplicitVRLittleEndian: True,
          DeflatedExplicitVRLittleEndian: True, ExplicitVRBigEndian: False}


def blank_regions(dataset: Dataset, transfer_syntax: str, regions: Sequence[Region], *,
                  keep_only: Sequence[Region] = ()) -> Cleaned:
    """Blank `regions`, and, when `keep_only` is given, every pixel outside the union of those
    regions, in the dataset's Pixel Data, in place (Pixel Data and any attributes the new
    encoding needs: PhotometricInterpretation, PlanarConfiguration, LossyImageCompression
    kept, ...). Raises PixelError."""
    if not regions and not keep_only:
        return Cleaned(transfer_syntax, 0)  # nothing asked: the pixels are not even decoded
    image = read_image(dataset)
    check_regions([*regions, *keep_only], image.rows, image.columns, image.frames)
    masks = {}
    for frame in range(1, image.frames + 1):
        mask = frame_mask(frame, image.rows, image.columns, regions, keep_only)
        if mask is not None:
            masks[frame] = mask
    if transfer_syntax in NATIVE:
        blank_native(dataset, image, NATIVE[transfer_syntax], masks, image.blank(dataset))
        return Cleaned(transfer_syntax, len(masks))
    return blank_encapsulated(dataset, transfer_syntax, image, masks)

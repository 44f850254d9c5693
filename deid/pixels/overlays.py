"""Overlay planes (60xx,3000) a profile keeps carry graphics and text like the pixels they lie
on: they are blanked (bit 0, not shown) in the same regions (PS3.3 C.9.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydicom.dataset import Dataset

from deid.pixels.image import Image
from deid.pixels.model import PixelError, Region
from deid.pixels.native import blank_native, native_pixels
from deid.pixels.regions import frame_mask

OVERLAY_GROUPS = range(0x6000, 0x6020, 2)  # the repeating group 60xx, even groups (C.9.2)


def blank_overlays(dataset: Dataset, little_endian: bool, regions: Sequence[Region],
                   keep_only: Sequence[Region]) -> None:
    """Blank, in every Overlay Data the dataset holds, the bits that lie on the regions'
    pixels (or outside keep_only's); Overlay Origin and Image Frame Origin place the plane.
    Raises PixelError."""
    for group in OVERLAY_GROUPS:
        if not dataset.get((group, 0x3000), None) or not dataset[group, 0x3000].value:
            continue  # no plane, or an empty one
        plane = _plane(dataset, group)
        origin = dataset.get((group, 0x0050))
        row, column = (int(origin.value[0]), int(origin.value[1])) if origin else (1, 1)
        first = int(dataset[group, 0x0051].value) if (group, 0x0051) in dataset else 1

        def shifted(areas: Sequence[Region], row=row, column=column) -> list[Region]:
            """Image coordinates to the plane's: its (1,1) lies on image (row, column)."""
            return [replace(area, left=area.left - column + 1, top=area.top - row + 1)
                    for area in areas]

        masks = {}
        for number in range(1, plane.frames + 1):
            mask = frame_mask(first + number - 1, plane.rows, plane.columns, shifted(regions),
                              shifted(keep_only))
            if mask is not None:
                masks[number] = mask
        if masks:
            pixels = native_pixels(dataset, plane, little_endian, keyword=(group << 16) | 0x3000)
            blank_native(dataset, pixels, masks, (0,), keyword=(group << 16) | 0x3000)


def _plane(dataset: Dataset, group: int) -> Image:
    name = f"({group:04X},"

    def number(element: int, default: int | None = None) -> int:
        item = dataset.get((group, element))
        if item is None or item.value in (None, ""):
            if default is None:
                raise PixelError("missing_attribute", f"{name}{element:04X}) is absent while "
                                 f"{name}3000) Overlay Data is present")
            return default
        return int(item.value)

    if number(0x0100, 1) != 1 or number(0x0102, 0) != 0:
        raise PixelError("unsupported_overlay", f"{name}0100) Overlay Bits Allocated or "
                         f"{name}0102) Overlay Bit Position is not 1 and 0")
    plane = Image(rows=number(0x0010), columns=number(0x0011), frames=number(0x0015, 1),
                  samples=1, bits_allocated=1, bits_stored=1, signed=False,
                  photometric="MONOCHROME2", planar=0)
    if min(plane.rows, plane.columns, plane.frames) < 1:
        raise PixelError("invalid_attribute", f"{name}0010) Overlay Rows, {name}0011) Overlay "
                         f"Columns or {name}0015) Number of Frames in Overlay is not positive")
    return plane

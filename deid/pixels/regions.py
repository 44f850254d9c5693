"""Regions to masks, and the regions an instance declares itself (ultrasound)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from deid.pixels.model import PixelError, Region

US_REGION_BOUNDS = ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1",
                    "RegionLocationMaxY1")


def ultrasound_regions(dataset: Dataset) -> list[Region]:
    """The Sequence of Ultrasound Regions (0018,6011) as Regions (RegionLocationMinX0 ...MaxY1,
    inclusive bounds in the standard, PS3.3 C.8.5.5.1); [] when absent. Raises PixelError when
    malformed."""
    if "SequenceOfUltrasoundRegions" not in dataset:
        return []
    regions = []
    for number, item in enumerate(dataset.SequenceOfUltrasoundRegions, start=1):
        bounds = [item.get(keyword) for keyword in US_REGION_BOUNDS]
        if any(not isinstance(bound, int) for bound in bounds):
            raise PixelError("malformed_ultrasound_regions",
                             f"(0018,6011) item {number} lacks one of (0018,6018)-(0018,601E)")
        min_x, min_y, max_x, max_y = bounds
        if max_x < min_x or max_y < min_y:
            raise PixelError("malformed_ultrasound_regions",
                             f"(0018,6011) item {number} has a maximum below its minimum")
        regions.append(Region(min_x, min_y, max_x - min_x + 1, max_y - min_y + 1))
    return regions


def check_regions(regions: Sequence[Region], rows: int, columns: int, frames: int) -> None:
    """Reject regions that are empty, lie entirely outside the image or name absent frames:
    such a rule was written for other images, and blanking nothing would pass text through."""
    for region in regions:
        numbers = (region.left, region.top, region.width, region.height, *(region.frames or ()))
        if not all(isinstance(number, int) for number in numbers):
            raise PixelError("invalid_region", "a region's bounds or frames are not integers")
        if region.width <= 0 or region.height <= 0:
            raise PixelError("invalid_region", f"a region of {region.width}x{region.height} "
                             "pixels is empty")
        if (region.left >= columns or region.top >= rows or region.left + region.width <= 0
                or region.top + region.height <= 0):
            raise PixelError("region_outside_image", f"a region at ({region.left},{region.top}) "
                             f"lies outside the {columns}x{rows} image")
        if region.frames is not None and (
                not region.frames or any(not 1 <= f <= frames for f in region.frames)):
            raise PixelError("region_outside_image",
                             f"a region names frames outside 1..{frames}")


def _paint(mask: np.ndarray, region: Region) -> None:
    """Set the region's pixels; a region may reach or lie beyond any edge."""
    top, left = max(region.top, 0), max(region.left, 0)
    bottom, right = max(region.top + region.height, 0), max(region.left + region.width, 0)
    mask[top:bottom, left:right] = True


def frame_mask(frame: int, rows: int, columns: int, regions: Sequence[Region],
               keep_only: Sequence[Region]) -> np.ndarray | None:
    """The pixels of `frame` (1-based) to blank, or None when there are none."""
    mask = np.zeros((rows, columns), dtype=bool)
    for region in regions:
        if region.applies_to(frame):
            _paint(mask, region)
    if keep_only:
        kept = np.zeros((rows, columns), dtype=bool)
        for region in keep_only:
            if region.applies_to(frame):
                _paint(kept, region)
        mask |= ~kept
    return mask if mask.any() else None

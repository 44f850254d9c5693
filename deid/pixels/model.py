"""The interface of the pixel package: regions in, a cleaned dataset's new encoding out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """A rectangle in pixel coordinates: columns [left, left + width), rows [top, top + height)."""

    left: int
    top: int
    width: int
    height: int
    frames: tuple[int, ...] | None = None  # 1-based frame numbers; None: every frame

    def applies_to(self, frame: int) -> bool:
        """Whether the region covers `frame` (1-based)."""
        return self.frames is None or frame in self.frames


class PixelError(Exception):
    """Pixels that cannot be cleaned safely; reason is a short snake_case word, message names
    tags and transfer syntaxes, never values."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Cleaned:
    """What blank_regions did: the dataset must now be written with `transfer_syntax`."""

    transfer_syntax: str  # the UID the dataset must now be written with
    frames: int  # how many frames were changed (had pixels blanked)

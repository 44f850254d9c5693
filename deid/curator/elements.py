"""Walking data sets element by element, naming elements, and showing values masked.

A position in a data set is a tuple of (tag, item index) steps, the item index None for the
element itself: ((0x00081115, 0), (0x00081140, 1), (0x00081155, None)) is written
'ReferencedSeriesSequence[0]>ReferencedImageSequence[1]>ReferencedSOPInstanceUID'.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from deid.engine import raw
from deid.standard import keyword_of, tag_text

Position = tuple[tuple[int, int | None], ...]
SHOWN_CHARACTERS = 64


class Positioned:
    """Something at a position in a data set: its tag and its path follow from it."""

    position: Position

    @property
    def tag(self) -> int:
        return self.position[-1][0]

    @property
    def path(self) -> str:
        return path_text(self.position)


@dataclass(frozen=True)
class Node(Positioned):
    """One element at one position."""

    position: Position
    element: DataElement
    creator: str | None  # the private creator of a private data element, if the item has one

    @property
    def name(self) -> str:
        return element_name(self.tag, self.creator)


def path_text(position: Position) -> str:
    """'OtherPatientIDsSequence[1]>PatientID'; private tags as '(0009,1010)'."""
    parts = []
    for tag, index in position:
        part = _segment(tag)
        parts.append(part if index is None else f"{part}[{index}]")
    return ">".join(parts)


def _segment(tag: int) -> str:
    return tag_text(tag) if (tag >> 16) % 2 else keyword_of(tag)


def is_private_creator(tag: int) -> bool:
    return bool((tag >> 16) % 2) and 0x10 <= (tag & 0xFFFF) <= 0xFF


def creator_of(dataset: Dataset, tag: int) -> str | None:
    """The private creator that reserves the block of a private data element."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group % 2 or element < 0x1000:
        return None
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in dataset:
        return None
    return str(dataset[creator_tag].value or "").strip() or None


def element_name(tag: int, creator: str | None = None) -> str:
    """A keyword; 'GEMS_ACQU_01 (0019,xx23)' for a private element with its creator;
    'private creator (0019,0010)' for a creator element; else the tag."""
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        if 0x10 <= element <= 0xFF:
            return f"private creator {tag_text(tag)}"
        if creator:
            return f"{creator} ({group:04X},xx{element & 0xFF:02X})"
        return tag_text(tag)
    return keyword_of(tag)


def walk(dataset: Dataset, position: Position = ()) -> Iterator[Node]:
    """Every element in document order, each followed by the elements of its items."""
    for tag in list(dataset.keys()):  # noqa: SIM118 - keys() does not decode values
        tag = int(tag)
        element = dataset[tag]
        here = (*position, (tag, None))
        yield Node(here, element, creator_of(dataset, tag))
        if element.VR == "SQ":
            for index, item in enumerate(element.value or []):
                yield from walk(item, (*position, (tag, index)))


def find(dataset: Dataset | None, position: Position) -> DataElement | None:
    """The element at a position, or None where any step is missing."""
    current = dataset
    for tag, index in position:
        if current is None or tag not in current:
            return None
        element = current[tag]
        if index is None:
            return element
        items = element.value if element.VR == "SQ" else None
        if not items or index >= len(items):
            return None
        current = items[index]
    return None


def values_of(element: DataElement) -> list[str]:
    return raw.values_of(element.value)


def is_empty(element: DataElement) -> bool:
    value = element.value
    if element.VR == "SQ":
        return not value
    if isinstance(value, bytes):
        return not value
    return not values_of(element)


def comparable(element: DataElement) -> object:
    """What two versions of an element are compared by."""
    value = element.value
    if element.VR == "SQ":
        return ("SQ", len(value or []))
    if isinstance(value, bytes):
        return value
    return tuple(v.strip() for v in values_of(element))


def display(element: DataElement | None, show_values: bool) -> str | None:
    """A value as a curator may paste it into a ticket: masked ('<8 chars>') unless asked.

    Sequences show their item count and binary values their length either way.
    """
    if element is None:
        return None
    value = element.value
    if element.VR == "SQ":
        count = len(value or [])
        return f"<{count} item{'s' if count != 1 else ''}>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    values = values_of(element)
    if not values:
        return "<empty>"
    if show_values:
        text = "\\".join(values)
        if len(text) > SHOWN_CHARACTERS:
            text = text[:SHOWN_CHARACTERS - 1] + "\u2026"
        return repr(text)
    length = sum(len(v) for v in values) + len(values) - 1
    if len(values) > 1:
        return f"<{len(values)} values, {length} chars>"
    return f"<{length} char{'s' if length != 1 else ''}>"

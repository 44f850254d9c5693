"""Reading elements for verification without trusting them to decode."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


def element_at(dataset: Dataset, tag: int):
    """The element, decoded; as read (raw bytes) when pydicom cannot decode its value: the
    engine keeps such an element byte-identical, and its bytes are searched for leaks."""
    try:
        return dataset[tag]
    except Exception:
        return dataset.get_item(tag)


def values_of(element) -> list[str]:
    """An element's values as text (binary values as their length only)."""
    if element is None:
        return []
    value = element.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, bytes):
        return [f"<{len(value)} bytes>"]
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]

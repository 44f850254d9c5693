"""Reading elements still as read, without decoding them.

pydicom decodes an element the first time its value is asked for, and a decoded element is
written back by pydicom's writer, not copied (writer.py): asking a value that the profile then
keeps costs the decode and the re-encoding. These read what the engine needs of an element
from its bytes where that gives what pydicom would decode, and decode it otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from deid import standard

Text = TypeVar("Text", str, bytes)
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text in these (PS3.5 6.2)
# The VRs pydicom decodes to the text as it stands (DS and IS become numbers; the rest binary).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                        "UI", "UR", "UT"})


def values_of(value: object) -> list[str]:
    """A decoded value as a list of strings, one per value (none for an empty value)."""
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def dictionary_vr(tag: int) -> str:
    """The dictionary's VR of a tag (the first of several), UN for a tag it does not hold."""
    info = standard.element_by_tag(tag)
    return info.vr.split("/")[0] if info else "UN"


def pydicom_vr(tag: int) -> str:
    """The VR pydicom gives an element read without one (implicit VR) when it decodes it."""
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def raw_uids(element: DataElement | RawDataElement) -> list[str] | None:
    """The values of a UI element still as read, as pydicom would decode them (its default
    character set; trailing NULs and spaces stripped, as pydicom's convert_UI strips them,
    not one pad character only; each value stripped of whitespace; a single blank value is
    none), without converting the element; None for any other element."""
    if (not isinstance(element, RawDataElement) or not isinstance(element.value, bytes)
            or (element.VR or dictionary_vr(element.tag)) != "UI"):
        return None
    return uids_in(element.value)


def uids_in(value: bytes) -> list[str]:
    """The UIDs of a UI value's bytes, as raw_uids reads them."""
    text = value.decode(default_encoding).rstrip("\0 ")  # as convert_UI strips
    values = [uid.strip() for uid in text.split("\\")]
    return [] if values == [""] else values


def uids_of(dataset: Dataset, tag: int) -> list[str]:
    """A present UID element's values."""
    uids = raw_uids(dataset.get_item(tag))
    return values_of(dataset[tag].value) if uids is None else uids


def has_value(dataset: Dataset, tag: int) -> bool:
    """Whether the element is present with a value other than padding."""
    if tag not in dataset:
        return False
    value = dataset.get_item(tag).value
    return not isinstance(value, bytes) or bool(value.strip(b"\0 "))


def _ascii(element: DataElement | RawDataElement) -> bytes | None:
    """An element's bytes still as read when they are ASCII without an ISO 2022 escape: they
    decode to the same ASCII text in every character set DICOM allows (PS3.5 6.1), and no
    other character can stand in that text. None for anything else."""
    value = element.value
    if not isinstance(element, RawDataElement) or not isinstance(value, bytes) or \
            not value.isascii() or b"\x1b" in value:
        return None
    return value


def texts_of(dataset: Dataset, tag: int) -> tuple[str, list[str]] | None:
    """A present text element's VR and values, each stripped, read from its bytes when they
    are ASCII text without NULs (pydicom strips those its own way), of a VR pydicom decodes
    to that text, the VR pydicom would decode it as; None otherwise: decode it."""
    raw = dataset.get_item(tag)
    value = _ascii(raw)
    if value is None or b"\0" in value or raw.VR == "UN":
        return None
    vr = raw.VR or dictionary_vr(tag)
    if vr not in STRING_VRS or (raw.VR is None and vr != pydicom_vr(tag)):
        return None
    text = value.decode("ascii")
    values = [text] if vr in SINGLE_VALUED else text.split("\\")
    return vr, [v.strip() for v in values]


def coded_text(dataset: Dataset, tag: int) -> str:
    """A present coded (CS) value as text, its values joined by backslashes and its padding
    stripped."""
    value = _ascii(dataset.get_item(tag))
    if value is None:
        return "\\".join(values_of(dataset[tag].value))
    return value.decode("ascii").strip("\0 ")


def may_hold(dataset: Dataset, tag: int, words: tuple[bytes, ...]) -> bool:
    """Whether a present element may hold one of the words (lower-case ASCII bytes), whole
    or in part, in any case; True whenever its bytes cannot tell (decode it to know)."""
    value = _ascii(dataset.get_item(tag))
    if value is None:
        return True
    folded = value.lower()
    return any(word in folded for word in words)


def cores(words: Iterable[Text]) -> tuple[Text, ...]:
    """The words that contain none of the others: a text holds one of the words, whole or in
    part, exactly when it holds one of these."""
    kept: list[Text] = []
    for word in sorted(set(words), key=len):
        if not any(core in word for core in kept):
            kept.append(word)
    return tuple(kept)

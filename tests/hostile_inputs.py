"""Hostile and broken inputs, built in code: every kind of file an archive holds, each with the
outcome the engine must give (`written`, or the reason of its rejection).

The table feeds tests/test_hostile.py and `python -m tests.reliability`; nothing here is read
from disk except pydicom's own test files.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from dicom_factory import SOP_UID, base_dataset, code_item, sequence_of, to_bytes
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

WRITTEN = "written"
# Explicit VR encodings with a reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
BOMB_BYTES = 4 << 30  # what the deflate bomb inflates to
ITEM_BOMB = 600_000  # empty items in the item bombs: past the engine's MAX_ITEMS
ELEMENT_BOMB = 1_100_000  # empty elements in the element bombs: past MAX_ELEMENTS


@dataclass(frozen=True)
class Hostile:
    """One input: its kind, its bytes, and the outcome: `written` or a rejection reason."""

    kind: str
    data: bytes
    expected: str
    what: str


def instance(number: int, **values: object) -> Dataset:
    """The factory's instance with its own SOP Instance UID, so that no two kinds collide in
    a pipeline run (same UID: duplicate_instance)."""
    ds = base_dataset()
    ds.SOPInstanceUID = f"{SOP_UID}.{number}"
    ds.StudyDate = "20200315"
    ds.InstitutionName = "Hostile Input Hospital"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def encoded(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian,
            preamble: bool = True) -> bytes:
    """A Part 10 file in the given transfer syntax, with or without preamble and DICM."""
    data = to_bytes(ds, transfer_syntax)
    return data if preamble else data[132:]


def bare(ds: Dataset, implicit: bool = True) -> bytes:
    """A data set without preamble or File Meta Information."""
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True)
    return buffer.getvalue()


def element(tag: tuple[int, int], vr: str, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element; `length` overrides the true length."""
    size = len(value) if length is None else length
    head = struct.pack("<HH", *tag) + vr.encode("ascii")
    if vr in LONG_VRS:
        return head + b"\0\0" + struct.pack("<I", size) + value
    return head + struct.pack("<H", size) + value


def delimiter(tag: tuple[int, int], length: int = 0) -> bytes:
    return struct.pack("<HHI", *tag, length)


def nested(depth: int) -> bytes:
    """A private sequence holding one item holding the same sequence, `depth` times, with
    undefined lengths, as some modalities write them."""
    opening = element((0x0009, 0x1001), "SQ", b"", UNDEFINED) + delimiter(ITEM, UNDEFINED)
    closing = delimiter(ITEM_END) + delimiter(SEQUENCE_END)
    creator = element((0x0009, 0x0010), "LO", b"HOSTILE ")
    return creator + opening * depth + closing * depth


def _deflated(number: int, extra: bytes = b"", level: int = 9) -> tuple[bytes, bytes]:
    """(preamble and meta, deflated data set without its final block) of a deflated file
    (PS3.5 A.5) whose data set ends with `extra`; the stream is flushed so that more
    compressed blocks can follow."""
    head = encoded(instance(number), DeflatedExplicitVRLittleEndian)
    meta_end = _meta_end(head)
    dataset = zlib.decompress(head[meta_end:], -zlib.MAX_WBITS) + extra
    start = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return head[:meta_end], start.compress(dataset) + start.flush(zlib.Z_FULL_FLUSH)


def _final_block() -> bytes:
    return zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()


def deflate_bomb(number: int) -> bytes:
    """A deflated file whose data set inflates to BOMB_BYTES: a real header, then an OB value
    of zeros. The zeros are one compressed block repeated: a full flush resets the compressor,
    so every 16 MiB of zeros compresses to the same bytes (built in milliseconds)."""
    meta, stream = _deflated(number, element((0x7FE0, 0x0010), "OB", b"", BOMB_BYTES - 16))
    zeros = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = zeros.compress(bytes(16 << 20)) + zeros.flush(zlib.Z_FULL_FLUSH)
    return meta + stream + block * (BOMB_BYTES // (16 << 20)) + _final_block()


def empty_items(count: int) -> bytes:
    """A private sequence of `count` empty items: 8 bytes each in the file, a Dataset each
    in pydicom."""
    return (element((0x0009, 0x0010), "LO", b"HOSTILE ")
            + element((0x0009, 0x1001), "SQ", b"", UNDEFINED)
            + delimiter(ITEM, 0) * count + delimiter(SEQUENCE_END))


@functools.cache
def empty_elements(count: int) -> bytes:
    """`count` empty private LO elements, each its own tag: 8 bytes each in the file, a data
    element each in pydicom."""
    return b"".join([struct.pack("<HH4s", 0x0009 + 2 * (i >> 16), i & 0xFFFF, b"LO\0\0")
                     for i in range(count)])


def deflated_element_bomb(number: int) -> bytes:
    """A few MiB that inflate, under the inflation cap, to ELEMENT_BOMB empty elements."""
    meta, stream = _deflated(number, empty_elements(ELEMENT_BOMB), level=1)
    return meta + stream + _final_block()


def deflated_item_bomb(number: int) -> bytes:
    """A few KiB that inflate, well under the inflation cap, to ITEM_BOMB empty items."""
    meta, stream = _deflated(number, empty_items(ITEM_BOMB))
    return meta + stream + _final_block()


def _meta_end(data: bytes) -> int:
    """The offset after the File Meta Information: 132 + 12 + its group length."""
    (group_length,) = struct.unpack("<I", data[140:144])
    return 144 + group_length


def truncations(data: bytes, stride: int) -> list[int]:
    """Offsets at which to cut a file: every `stride` bytes, and every byte of the first 400
    (preamble, meta header, first elements) and of the last 64."""
    offsets = set(range(0, min(400, len(data)))) | set(range(0, len(data), stride))
    offsets |= set(range(max(0, len(data) - 64), len(data)))
    return sorted(offsets)


# (tag, VR, value) of values that their VR does not allow.
INVALID_VALUES = [((0x0018, 0x0050), "DS", b"abc "), ((0x0020, 0x0011), "IS", b"x1"),
                  ((0x0008, 0x0021), "DA", b"2020-99-99"), ((0x0008, 0x0031), "TM", b"99:99 "),
                  ((0x0010, 0x1010), "AS", b"old "), ((0x0020, 0x0052), "UI", b"1.02.x")]


def _testfile(name: str) -> bytes:
    with open(get_testdata_file(name), "rb") as f:
        return f.read()


def _with(data: bytes, extra: bytes) -> bytes:
    return data + extra


def _cases() -> list[tuple[str, str, str, Callable[[int], bytes]]]:
    """(kind, expected, what, build from a unique number)."""
    def le(n, **v):
        return encoded(instance(n, **v))

    return [
        ("explicit_le", WRITTEN, "Part 10, explicit VR little endian", le),
        ("implicit_le", WRITTEN, "Part 10, implicit VR little endian",
         lambda n: encoded(instance(n), ImplicitVRLittleEndian)),
        ("big_endian", WRITTEN, "Part 10, explicit VR big endian (retired)",
         lambda n: encoded(instance(n), ExplicitVRBigEndian)),
        ("deflated", WRITTEN, "Deflated Explicit VR Little Endian",
         lambda n: encoded(instance(n), DeflatedExplicitVRLittleEndian)),
        ("no_preamble", WRITTEN, "meta header but no 128-byte preamble and DICM",
         lambda n: encoded(instance(n), preamble=False)),
        ("no_meta_implicit", WRITTEN, "a bare implicit VR data set",
         lambda n: bare(instance(n))),
        ("no_meta_explicit", WRITTEN, "a bare explicit VR data set",
         lambda n: bare(instance(n), implicit=False)),
        ("undefined_length_sequence", WRITTEN, "sequence and items of undefined length",
         lambda n: _with(le(n), nested(3))),
        ("nested_64", WRITTEN, "sequences nested 64 deep",
         lambda n: _with(le(n), nested(64))),
        ("nested_5000", "unreadable", "sequences nested 5000 deep (RecursionError in pydicom)",
         lambda n: _with(le(n), nested(5000))),
        ("sequence_no_delimiter", "unreadable", "undefined-length sequence cut before its end",
         lambda n: _with(le(n), nested(3)[:-16])),
        ("length_past_end", "unreadable", "an element declaring 4 GB, the file ends at once",
         lambda n: _with(le(n), element((0x0009, 0x1002), "OB", b"\1" * 8, 0xFFFFFFF0))),
        ("sequence_length_past_end", "unreadable", "a defined-length sequence declaring 4 GB",
         lambda n: _with(le(n), element((0x0009, 0x1001), "SQ", delimiter(ITEM, 0),
                                        0xFFFFFFF0))),
        ("item_length_past_end", WRITTEN, "an item declaring 4 GB in a 16-byte sequence "
         "(read up to the sequence's end)",
         lambda n: _with(le(n), element((0x0040, 0xA730), "SQ",
                                        delimiter(ITEM, 0xFFFFFFF0) + b"\0" * 8))),
        ("short_length_past_end", "unreadable", "a 2-byte length longer than the rest",
         lambda n: _with(le(n), element((0x0011, 0x0010), "LO", b"ab", 0xFFFE))),
        ("invalid_vr", WRITTEN, "an element with VR 'ZZ' (private, removed by Basic)",
         lambda n: _with(le(n), element((0x0009, 0x1003), "ZZ", b"1234"))),
        ("invalid_values", WRITTEN, "DS, IS, DA, TM, AS and UI values that are not valid",
         lambda n: _with(le(n), b"".join(element(*e) for e in INVALID_VALUES))),
        ("odd_length_text", WRITTEN, "a text value of odd length (no padding)",
         lambda n: _with(le(n), element((0x0011, 0x0010), "LO", b"ODD"))),
        ("unknown_charset", WRITTEN, "Specific Character Set 'ISO_IR 999' and Latin-1 names",
         lambda n: _with(le(n), element((0x0008, 0x0005), "CS", b"ISO_IR 999")
                         + element((0x0010, 0x1001), "PN", "Müller^Jürgen".encode("latin-1")))),
        ("multi_charset", WRITTEN, "ISO 2022 character sets with escape sequences",
         lambda n: le(n, SpecificCharacterSet=["", "ISO 2022 IR 87"])),
        ("invalid_sop_uid", WRITTEN, "a SOP Instance UID that is not a UID (replaced by Basic)",
         lambda n: le(n, SOPInstanceUID=f"1.2.ABC.{n}")),
        ("path_sop_uid", WRITTEN, "a SOP Instance UID written as a path (replaced by Basic)",
         lambda n: le(n, SOPInstanceUID=f"../../../tmp/{n}")),
        ("missing_sop_uid", "missing_attribute", "no SOP Instance UID",
         lambda n: _without(instance(n), "SOPInstanceUID")),
        ("multi_valued_study_uid", "missing_attribute", "two Study Instance UIDs",
         lambda n: le(n, StudyInstanceUID=["1.2.3", "1.2.4"])),
        ("sequence_in_sequence", WRITTEN, "code sequences at two depths",
         lambda n: le(n, AnatomicRegionSequence=sequence_of(code_item()))),
        ("zero_bytes", "not_dicom", "an empty file", lambda n: b""),
        ("text_file", "not_dicom", "a text file", lambda n: b"patient list\nDoe^Jane\n"),
        ("random_bytes", "not_dicom", "4 KiB of pseudo-random bytes",
         lambda n: bytes((i * 7919 + n) % 251 for i in range(4096))),
        ("dicm_only", "missing_attribute", "a preamble and DICM, nothing else",
         lambda n: b"\0" * 128 + b"DICM"),
        ("dicomdir", "dicomdir", "a DICOMDIR (pydicom's test DICOMDIR)",
         lambda n: _testfile("DICOMDIR")),
        ("deflate_bomb", "too_large", "4 MiB of deflate that inflate to 4 GiB",
         deflate_bomb),
        ("item_bomb", "too_large", "600,000 empty items in a sequence (4.8 MB)",
         lambda n: _with(le(n), empty_items(ITEM_BOMB))),
        ("deflated_item_bomb", "too_large", "the same, deflated: a few KiB",
         deflated_item_bomb),
        ("element_bomb", "too_large", "1.1 million empty elements (8.8 MB)",
         lambda n: _with(le(n), empty_elements(ELEMENT_BOMB))),
        ("deflated_element_bomb", "too_large", "the same, deflated",
         deflated_element_bomb),
        ("bare_element_bomb", "too_large", "the same in a bare explicit VR data set",
         lambda n: _with(bare(instance(n), implicit=False), empty_elements(ELEMENT_BOMB))),
        ("many_items", WRITTEN, "10,000 empty items in a private sequence",
         lambda n: _with(le(n), empty_items(10_000))),
        ("encapsulated_jpeg", WRITTEN, "JPEG pixel data in fragments (pydicom's JPEG2000.dcm)",
         lambda n: _testfile("JPEG2000.dcm")),
        ("fragments_no_delimiter", "unreadable", "JPEG 2000 fragments without their "
         "sequence delimiter", lambda n: _testfile("JPEG2000.dcm")[:-8]),
        ("pydicom_truncated", "unreadable", "pydicom's MR_truncated.dcm",
         lambda n: _testfile("MR_truncated.dcm")),
    ]


def _without(ds: Dataset, keyword: str) -> bytes:
    delattr(ds, keyword)
    return bare(ds, implicit=False)


@functools.cache
def hostile_inputs() -> tuple[Hostile, ...]:
    """Every kind, built once per process (the bomb takes a fraction of a second)."""
    return tuple(Hostile(kind, build(number), expected, what)
                 for number, (kind, expected, what, build) in enumerate(_cases(), start=1))


def by_kind(kind: str) -> Hostile:
    return next(h for h in hostile_inputs() if h.kind == kind)

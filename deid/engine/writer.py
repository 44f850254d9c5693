"""Encode a de-identified dataset as pydicom's ``dcmwrite(enforce_file_format=True)`` does,
byte for byte, in a fraction of its time.

De-identification leaves most elements as they were read (pydicom's RawDataElements: their
encoded value still in hand) but must parse every sequence to apply the profile at every depth
(PS3.15 E.1.1). pydicom's writer then spends most of its time on per-element bookkeeping for
the items of those sequences. Here an element still raw is its header and its bytes, and a
sequence is its items written by this module; everything else (a value the engine set, pixel
data, a data set whose encoding or character set changed, a big endian or deflated transfer
syntax) goes through pydicom's own functions. `tests/test_engine_writer.py` holds the outputs
to pydicom's, byte for byte, over every test file of pydicom's and the shared corpus.
"""

from __future__ import annotations

import struct

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO, DicomIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.filewriter import write_dataset as pydicom_write_dataset
from pydicom.tag import BaseTag, tag_in_exception
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

PIXEL_DATA = 0x7FE00010
META_VERSION = 0x00020001  # File Meta Information Version
_IMPLICIT = struct.Struct("<HHI")  # tag, 4-byte length
_EXPLICIT_SHORT = struct.Struct("<HH2sH")  # tag, VR, 2-byte length
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")  # tag, VR, reserved, 4-byte length
UNDEFINED_LENGTH = 0xFFFFFFFF
# PS3.5 7.5: an item (its length set once known), an item's and a sequence's delimiters.
ITEM_START = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_VR_BYTES = {str(vr): str(vr).encode() for vr in VR if len(vr) == 2}  # the 2-letter VRs
# Explicit VRs with a reserved field and a 4-byte length, and those with a 2-byte length
# (PS3.5 7.1.2), as the bytes of a header hold them.
LONG_VRS = frozenset(str(vr).encode() for vr in EXPLICIT_VR_LENGTH_32)
SHORT_VRS = frozenset(_VR_BYTES.values()) - LONG_VRS


def encoded_text(dataset: Dataset, tag: int, vr: str, value: object) -> RawDataElement | None:
    """A text, date or UID value the engine sets, already encoded as pydicom would write it
    (ASCII, padded to even length with a space, a UID with a NUL): the writer then copies it
    like an element left as read. None for a value that is not one plain ASCII string."""
    text = value or ""
    if not isinstance(text, str) or not text.isascii():
        return None
    data = padded(text, vr)
    implicit, little = dataset.original_encoding
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, bool(implicit),
                          little is not False)


def encoded_elements(dataset: Dataset, implicit: bool, little: bool
                     ) -> tuple[RawDataElement, ...]:
    """The elements of a data set built in code, each encoded by pydicom as a data set read
    in this encoding holds it, for the writer to copy (values fixed per profile: encoded once)."""
    elements = []
    for tag in sorted(dataset.keys()):  # noqa: SIM118
        element = dataset[tag]
        encoded = _by_pydicom((implicit, little), write_data_element, element,
                              [default_encoding])
        value = encoded[8 if implicit or element.VR.encode() not in LONG_VRS else 12:]  # header
        elements.append(RawDataElement(BaseTag(tag), element.VR, len(value), value, 0,
                                       implicit, little))
    return tuple(elements)


def fast_encoding(transfer_syntax: UID) -> bool | None:
    """Whether a data set in this transfer syntax is written implicit VR, or None when this
    module leaves the whole file to pydicom (big endian, deflated, private or unknown)."""
    if (not transfer_syntax.is_transfer_syntax or transfer_syntax.is_private
            or transfer_syntax.is_deflated or not transfer_syntax.is_little_endian):
        return None
    return transfer_syntax.is_implicit_VR


def write_file(dataset: Dataset, meta: FileMetaDataset, implicit: bool, fp: DicomIO) -> None:
    """The preamble, File Meta Information and data set, as ``dcmwrite`` writes them for a
    little endian, not deflated transfer syntax (``meta.TransferSyntaxUID``)."""
    if any(tag < 0x00030000 for tag in dataset.keys()):  # noqa: SIM118 - no value decoded
        raise ValueError("command or file meta elements in the data set")
    if PIXEL_DATA in dataset:  # as dcmwrite does: encapsulated iff the syntax compresses
        dataset[PIXEL_DATA].is_undefined_length = UID(meta.TransferSyntaxUID).is_compressed
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    fp.write(b"\x00" * 128 + b"DICM")
    fp.write(_file_meta(meta))
    if _reencoded(dataset, implicit):
        pydicom_write_dataset(fp, dataset)
        return
    out = bytearray()
    _elements(out, dataset, implicit, dataset.get("SpecificCharacterSet", default_encoding), fp)
    fp.write(bytes(out))


def _file_meta(meta: FileMetaDataset) -> bytes:
    """File Meta Information as write_file_meta_info(enforce_standard=True) writes it
    (PS3.10 7.1: explicit VR little endian, the group length first, version 00 01), for
    meta of text elements only; any other is left to pydicom."""
    texts = [meta[tag] for tag in sorted(meta.keys()) if tag > META_VERSION]  # noqa: SIM118
    if META_VERSION in meta or not all(isinstance(e.value, str) and e.value.isascii()
                                       and e.VR in ("UI", "SH") for e in texts):
        buffer = DicomBytesIO()
        write_file_meta_info(buffer, meta, enforce_standard=True)
        return buffer.getvalue()
    validate_file_meta(meta, enforce_standard=True)
    body = bytearray(_EXPLICIT_LONG.pack(0x0002, 0x0001, b"OB", 2) + b"\x00\x01")
    for element in texts:
        data = padded(element.value, element.VR)
        tag = element.tag
        body += _EXPLICIT_SHORT.pack(tag >> 16, tag & 0xFFFF, element.VR.encode(), len(data))
        body += data
    return _EXPLICIT_SHORT.pack(0x0002, 0x0000, b"UL", 4) + struct.pack("<I", len(body)) + body


def padded(text: str, vr: str) -> bytes:
    """ASCII text as pydicom writes it: padded to even length, a UID with a NUL (PS3.5 6.2).
    Raises UnicodeEncodeError for other text."""
    data = text.encode("ascii")
    return data + (b"\0" if vr == "UI" else b" ") if len(data) % 2 else data


def _reencoded(dataset: Dataset, implicit: bool) -> bool:
    """pydicom's writer decodes and re-encodes every element of a data set read in another
    encoding or character set (or created anew): such a data set is left to it."""
    return ((implicit, True) != dataset.original_encoding
            or dataset.original_character_set != dataset._character_set)


def _raw_header(tag: int, element: RawDataElement, implicit: bool) -> bytes | None:
    """The header of an element still as read, whose bytes can follow it unchanged; None for
    any element pydicom's writer treats otherwise (undefined length, pixel data, an explicit
    VR it would refuse or turn into UN)."""
    value = element.value
    if element.length == UNDEFINED_LENGTH or tag == PIXEL_DATA or type(value) is not bytes:
        return None
    return element_header(tag, element.VR, len(value), implicit)


def element_header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes | None:
    """An element's header as pydicom writes it (little endian; PS3.5 7.1); None for an
    explicit VR that is not a DICOM one, or a length its 2-byte field cannot hold."""
    if implicit:
        return _IMPLICIT.pack(tag >> 16, tag & 0xFFFF, length)
    code = _VR_BYTES.get(vr)  # type: ignore[arg-type]
    if code is None:
        return None
    if code in LONG_VRS:
        return _EXPLICIT_LONG.pack(tag >> 16, tag & 0xFFFF, code, length)
    if length > 0xFFFF:
        return None
    return _EXPLICIT_SHORT.pack(tag >> 16, tag & 0xFFFF, code, length)


def _sequence(out: bytearray, element: DataElement, implicit: bool,
              encodings: str | list[str] | None) -> None:
    """A sequence element, as write_data_element and write_sequence_item write it."""
    tag = element.tag
    undefined = element.is_undefined_length
    out += element_header(tag, "SQ", UNDEFINED_LENGTH, implicit)  # length set once known
    length_at = len(out) - 4
    items = element.value
    if items:
        item_encodings = convert_encodings(encodings or [default_encoding])
        for item in items:
            out += ITEM_START
            start = len(out)
            _dataset(out, item, implicit, item_encodings)
            if getattr(item, "is_undefined_length_sequence_item", False):
                out += ITEM_DELIMITER
            else:
                struct.pack_into("<I", out, start - 4, len(out) - start)
    if undefined:
        out += SEQUENCE_DELIMITER
    else:
        struct.pack_into("<I", out, length_at, len(out) - length_at - 4)


def _dataset(out: bytearray, dataset: Dataset, implicit: bool,
             parent_encodings: list[str]) -> None:
    """An item's data set, as write_dataset writes it."""
    if _reencoded(dataset, implicit):
        out += _by_pydicom((implicit, True), pydicom_write_dataset, dataset, parent_encodings)
    else:
        _elements(out, dataset, implicit,
                  dataset.get("SpecificCharacterSet", parent_encodings), None)


def _elements(out: bytearray, dataset: Dataset, implicit: bool,
              encodings: str | list[str] | None, fp: DicomIO | None) -> None:
    """The elements of a data set in tag order, as write_dataset writes them. With ``fp``
    (the top level), an element left to pydicom is written straight to it, after what
    ``out`` holds: a pixel data value read in chunks (deidentify_stream) stays in chunks."""
    # items() gives elements as they are held, those still raw undecoded.
    for tag, element in sorted(dataset.items(), key=_tag_of):
        if not tag & 0xFFFF and tag >> 16 > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        if element.value is None and isinstance(element, RawDataElement):
            element = dataset.get_item(tag)  # an empty value, which pydicom converts there
        if type(element) is RawDataElement:
            header = _raw_header(int(tag), element, implicit)  # an int compares in C
            if header is not None:
                out += header
                out += element.value
                continue
        if element.VR == "SQ" and not element.is_raw:
            _sequence(out, element, implicit, encodings)
        elif fp is not None:
            fp.write(bytes(out))  # a copy: a sink may keep what it is given
            out.clear()
            with tag_in_exception(tag):
                write_data_element(fp, element, encodings)
        else:
            with tag_in_exception(tag):
                out += _by_pydicom((implicit, True), write_data_element, element, encodings)


def _tag_of(pair: tuple[int, object]) -> int:
    return int(pair[0])  # a BaseTag compares in Python


def _by_pydicom(encoding: tuple[bool, bool], write, *args) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = encoding
    write(buffer, *args)
    return buffer.getvalue()

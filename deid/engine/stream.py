"""De-identify a huge instance without holding its pixel data in memory.

The header is parsed up to the top-level pixel data element, whose extent is found from its
length (or, encapsulated, by walking its items: PS3.5 A.4); the few elements after it are parsed
too. The engine then sees the whole dataset, the pixel data as a placeholder value, through the
same steps as `deidentify_bytes`. If the profile keeps the pixel data, the dataset is written
(writer.py) with the pixel data element's value as a window onto the input, which pydicom's
element writer copies in chunks: the output is the file `deidentify_bytes` would write, byte
for byte.

What cannot be streamed falls back to the in-memory path: a deflated transfer syntax, no
top-level pixel data, an element header or encapsulation this module does not walk (pydicom
then scans byte by byte), or a profile that rewrites the pixel data. Elements after the pixel
data (trailing padding and the like) go through the profile like any other; more than
MAX_TAIL bytes of them is rejected rather than read into memory (fail closed).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset as read_elements
from pydicom.uid import DeflatedExplicitVRLittleEndian

from deid.engine.core import Rejected, pixel_plan
from deid.engine.files import (
    Output,
    Rejection,
    SinkError,
    check_elements,
    check_size,
    deidentify_bytes,
    deidentify_parsed,
    encode,
    guarded,
    output_of,
    parse,
)
from deid.engine.writer import UNDEFINED_LENGTH
from deid.keys import SecretKey
from deid.profile.model import Profile

CHUNK = 4 << 20  # bytes copied at a time
MAX_TAIL = 16 << 20  # elements after the pixel data, parsed in memory
CHECKED_PREFIX = 64 << 20  # bytes of a streamed input that the bomb checks read
# PS3.5 7.8 / A.4: Pixel Data, Float Pixel Data, Double Float Pixel Data; item, delimiter.
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
ITEM, SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD
# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length.
PIXEL_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
# Stands in for the pixel data value while the engine runs: no rule of ours produces it, so a
# different value after the engine means a rule changed the pixel data. Not `bytes`, so that
# the completeness check does not compare its length with the element's.
_PLACEHOLDER = bytearray(b"deid: pixel data streamed")
TRUNCATED = "the file ends inside an element (truncated)"


class _FallBack(Exception):
    """This input cannot be streamed: de-identify it in memory."""


@dataclass(frozen=True)
class _PixelElement:
    """Where the top-level pixel data element is in the input, and its header as read."""

    tag: int
    vr: str | None
    length: int  # as in the file: UNDEFINED_LENGTH for encapsulated
    value_start: int
    value_length: int  # of the value pydicom would read: items only, no delimiter
    end: int  # the first byte after the element (and its delimiter)
    implicit: bool
    little: bool

    def raw(self, value: bytearray) -> RawDataElement:
        return RawDataElement(self.tag, self.vr, self.length, value, self.value_start,
                              self.implicit, self.little)


@dataclass(frozen=True)
class _Span:
    """``length`` bytes of the input from ``offset``, which the sink copies in the kernel:
    what a _Window hands pydicom's copy loop, which passes each chunk on to the sink as is,
    when both ends are OS files."""

    offset: int
    length: int

    def __len__(self) -> int:
        return self.length


class _Window(io.BufferedIOBase):
    """A read-only view of ``length`` bytes of ``source`` from ``start``: the pixel data
    value, which pydicom copies from here to the output in chunks (with ``spans``, chunks of
    CHUNK bytes or more are _Spans, not bytes)."""

    def __init__(self, source: BinaryIO, start: int, length: int, spans: bool):
        super().__init__()
        self._source, self._start, self._length, self._position = source, start, length, 0
        self._spans = spans

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = min(max(base + offset, 0), self._length)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._length - self._position
        if size is not None and size >= 0:
            wanted = min(wanted, size)
        if self._spans and wanted and size is not None and size >= CHUNK:
            # The rest in one span: the kernel copies it in as few calls as it can.
            span = _Span(self._start + self._position, self._length - self._position)
            self._position = self._length
            return span  # type: ignore[return-value]
        try:
            if self._source.tell() != self._start + self._position:
                self._source.seek(self._start + self._position)
            data = _read_exactly(self._source, wanted)
        except Exception as exc:
            raise Rejected("unreadable", f"cannot read the file ({type(exc).__name__})") from None
        if len(data) < wanted:  # the input shrank since its extent was checked
            raise Rejected("unreadable", TRUNCATED)
        self._position += wanted
        return data


class _CountingSink:
    """Writes to the sink, counting (and with ``digest``, hashing) what goes through; a
    failure of the sink is a SinkError, so that it is not taken for a fault of the input.
    _Spans of ``source`` are copied file to file by the kernel (os.sendfile)."""

    def __init__(self, sink: BinaryIO, digest: bool, source: BinaryIO):
        self._sink, self._source, self.size = sink, source, 0
        self.digest = hashlib.sha256() if digest else None

    def write(self, data: bytes | _Span) -> int:
        try:
            if isinstance(data, _Span):
                self._copy(data)
            else:
                self._sink.write(data)
        except Rejected:
            raise
        except Exception as exc:
            raise SinkError(type(exc).__name__) from None
        if self.digest is not None:
            self.digest.update(data)
        self.size += len(data)
        return len(data)

    def _copy(self, span: _Span) -> None:
        self._sink.flush()
        sink, offset, left = self._sink.fileno(), span.offset, span.length
        while left:
            sent = os.sendfile(sink, self._source.fileno(), offset, left)
            if not sent:  # the input shrank since its extent was checked
                raise Rejected("unreadable", TRUNCATED)
            offset, left = offset + sent, left - sent
        self._sink.seek(0, os.SEEK_END)  # the file object learns where the data now ends

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """pydicom wants one, and never moves back: the sink is written front to back."""
        if (offset, whence) not in ((self.size, os.SEEK_SET), (0, os.SEEK_CUR)):
            raise io.UnsupportedOperation("the output is written front to back")
        return self.size


class _Reader:
    """The input as pydicom should see it: read, seek and tell only. (A Beam S3 reader is an
    io.BufferedReader whose raw stream has no name, which pydicom asks for.)"""

    def __init__(self, source: BinaryIO):
        self._source = source
        self.read, self.seek, self.tell = source.read, source.seek, source.tell

    def fileno(self) -> int:
        return self._source.fileno()


def _are_files(*streams: object) -> bool:
    """Whether the streams are OS files, between which the kernel can copy (not pipes)."""
    try:
        return all(stat.S_ISREG(os.fstat(s.fileno()).st_mode)  # type: ignore[attr-defined]
                   for s in streams)
    except (AttributeError, OSError, ValueError):
        return False


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the input (remote readers may return short)."""
    parts, left = [], size
    while left > 0:
        part = source.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _stream_size(source: BinaryIO) -> int:
    position = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(position)
    return size


def _locate_pixels(source: BinaryIO, start: int, size: int, implicit: bool,
                   little: bool) -> _PixelElement:
    """Read the pixel data element's header at ``start`` and find its end without reading its
    value. Raises Rejected for a truncated value, _FallBack for what it does not walk."""
    order = "<" if little else ">"
    head = _read_exactly(source, 8)
    if len(head) < 8:
        raise _FallBack
    group, element = struct.unpack(order + "HH", head[:4])
    tag = group << 16 | element
    if tag not in PIXEL_TAGS:
        raise _FallBack
    vr: str | None = None
    if implicit:
        (length,), value_start = struct.unpack(order + "L", head[4:]), start + 8
    else:
        vr = head[4:6].decode("latin-1")
        if vr not in PIXEL_VRS or head[6:8] != b"\0\0":
            raise _FallBack  # pydicom reads other VRs with a 2-byte length
        more = _read_exactly(source, 4)
        if len(more) < 4:
            raise Rejected("unreadable", TRUNCATED)
        (length,), value_start = struct.unpack(order + "L", more), start + 12
    if length != UNDEFINED_LENGTH:
        if value_start + length > size:
            raise Rejected("unreadable", TRUNCATED)
        return _PixelElement(tag, vr, length, value_start, length, value_start + length,
                             implicit, little)
    if tag != 0x7FE00010 or vr == "UN":
        raise _FallBack  # pydicom reads UN of undefined length as a sequence (PS3.5 6.2.2)
    position = value_start
    while True:  # PS3.5 A.4: items, then the sequence delimitation item
        source.seek(position)
        header = _read_exactly(source, 8)
        if len(header) < 4:
            raise Rejected("unreadable", TRUNCATED)
        item_group, item_element = struct.unpack(order + "HH", header[:4])
        item = item_group << 16 | item_element
        if item == SEQUENCE_DELIMITER:  # pydicom does not need its (zero) length: nor do we
            return _PixelElement(tag, vr, length, value_start, position - value_start,
                                 min(position + 8, size), implicit, little)
        if len(header) < 8:
            raise Rejected("unreadable", TRUNCATED)
        (item_length,) = struct.unpack(order + "L", header[4:])
        if item != ITEM:
            raise _FallBack  # pydicom scans such a value byte by byte for the delimiter
        position += 8 + item_length
        if position > size:
            raise Rejected("unreadable", TRUNCATED)


def _pixel_extent(source: BinaryIO, size: int) -> tuple[Dataset, int, _PixelElement | None]:
    """The header parsed up to the top-level pixel data, where it ends, and the pixel data
    element; None where there is none to walk: no top-level pixel data, or a deflated data
    set (PS3.5 A.5), whose bytes in the file are not the data set's. Raises Rejected, or
    _FallBack for pixel data this module does not walk."""
    dataset = parse(source, stop_before_pixels=True)
    start = source.tell()
    meta = getattr(dataset, "file_meta", None)
    deflated = meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    if deflated or start >= size:
        return dataset, start, None
    implicit, little = dataset.original_encoding
    return dataset, start, _locate_pixels(source, start, size, bool(implicit), bool(little))


def _read_tail(source: BinaryIO, pixels: _PixelElement, size: int, header: Dataset) -> Dataset:
    """The elements after the pixel data, read where they are (their offsets absolute)."""
    # The bomb checks the first bytes had, for what follows the pixel data.
    check_elements(_tail_bytes(source, pixels, size), pixels.implicit, pixels.little)
    source.seek(pixels.end)
    return read_elements(source, pixels.implicit, pixels.little,
                         parent_encoding=header._character_set)


def _tail_bytes(source: BinaryIO, pixels: _PixelElement, size: int) -> bytes:
    """The bytes after the pixel data element, at most MAX_TAIL of them. Raises Rejected."""
    if size - pixels.end > MAX_TAIL:
        raise Rejected("unreadable", f"more than {MAX_TAIL >> 20} MiB after the pixel data "
                       "element: not parsed in memory")
    source.seek(pixels.end)
    return source.read(size - pixels.end)


def _cleans_pixels(dataset: Dataset, profile: Profile) -> bool:
    """Whether the profile's pixel plan blanks this instance's pixels. A plan that rejects
    the instance is left to the engine, which rejects it in its usual order."""
    try:
        return pixel_plan(dataset, profile).cleans
    except Rejected:
        return False


def _streamed(source: BinaryIO, sink: BinaryIO, profile: Profile, key: SecretKey,
              size: int, digest: bool) -> Output | None:
    """De-identify without reading the pixel data value; None: it must be done in memory.
    Raises Rejected."""
    try:
        return _stream(source, sink, profile, key, size, digest)
    except _FallBack:
        return None


def _stream(source: BinaryIO, sink: BinaryIO, profile: Profile, key: SecretKey,
            size: int, digest: bool) -> Output:
    """Header, pixel data extent, tail; the engine; the output written through pydicom.
    Raises Rejected, or _FallBack before anything is written."""
    if size == 0:
        raise Rejected("not_dicom", "the file is empty")
    source.seek(0)
    # The in-memory path's bomb checks, on the first bytes: a header of more elements or items
    # than allowed is refused before pydicom parses it (a million 8-byte elements fit in it).
    check_size(source.read(min(size, CHECKED_PREFIX)))
    source.seek(0)
    dataset, _, pixels = _pixel_extent(source, size)
    if pixels is None:
        raise _FallBack  # nothing to gain, or deflated
    dataset.update(_read_tail(source, pixels, size, dataset))
    dataset[pixels.tag] = pixels.raw(_PLACEHOLDER)
    if _cleans_pixels(dataset, profile):
        raise _FallBack  # PS3.15 E.3.1: cleaning decodes the pixel data, so it is read whole
    result, transfer_syntax = deidentify_parsed(dataset, size, profile, key)
    out = result.dataset
    if pixels.tag in out:
        element = out[pixels.tag]  # converted as dcmwrite converts it: the same VR
        if element.value != _PLACEHOLDER:
            raise _FallBack  # a rule rewrote the pixel data, from its value perhaps
        if element.VR == "UN":
            raise _FallBack  # pydicom writes no UN value from a buffer
        if pixels.value_length % 2:
            raise _FallBack  # pydicom pads an odd value it holds, not one it streams
        element.value = _Window(source, pixels.value_start, pixels.value_length,
                                spans=not digest and _are_files(source, sink))
    written = _CountingSink(sink, digest, source)
    config.settings.buffered_read_size = CHUNK
    encode(out, transfer_syntax, written)  # type: ignore[arg-type]
    return output_of(result, transfer_syntax, profile, None, written.size,
                     written.digest.hexdigest() if written.digest else None)


def deidentify_stream(source: BinaryIO, sink: BinaryIO, profile: Profile, key: SecretKey,
                      size: int | None = None, digest: bool = True) -> Output | Rejection:
    """De-identify the file in ``source`` (``size`` bytes, found if not given) into ``sink``,
    holding the header in memory but not the pixel data, unless ``source`` cannot seek.
    Returns the Output, whose ``data`` is None (and ``sha256`` None unless ``digest``:
    hashing costs more than the copy), or a Rejection; on a Rejection ``sink`` may hold part
    of a file, which the caller must discard. Raises SinkError when the sink fails."""
    if source.seekable():
        size = _stream_size(source) if size is None else size
        reader = cast(BinaryIO, _Reader(source))  # what pydicom may see of it
        streamed = guarded(lambda: _streamed(reader, sink, profile, key, size, digest))
        if streamed is not None:
            return streamed
    return _in_memory(source, sink, profile, key)


def _in_memory(source: BinaryIO, sink: BinaryIO, profile: Profile,
               key: SecretKey) -> Output | Rejection:
    """The whole file read and de-identified by deidentify_bytes, then written to ``sink``."""
    try:
        if source.seekable():
            source.seek(0)
        data = source.read()
    except Exception as exc:
        return Rejection("unreadable", f"cannot read the file ({type(exc).__name__})")
    result = deidentify_bytes(data, profile, key)
    del data
    if isinstance(result, Rejection):
        return result
    try:
        sink.write(result.data or b"")
    except Exception as exc:
        raise SinkError(type(exc).__name__) from None
    return replace(result, data=None)


def without_pixel_data(source: BinaryIO) -> bytes:
    """The bytes of a file without its top-level pixel data element (all of them when it has
    none, or pixel data this module does not walk): what is read of a streamed instance to
    verify it, the elements after the pixel data included. Raises Rejected."""
    reader = cast(BinaryIO, _Reader(source))
    size = _stream_size(reader)
    try:
        _, start, pixels = _pixel_extent(reader, size)
    except _FallBack:
        pixels = None
    reader.seek(0)
    if pixels is None:
        return reader.read()
    return reader.read(start) + _tail_bytes(reader, pixels, size)

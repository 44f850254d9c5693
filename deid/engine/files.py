"""From the bytes of a DICOM file to the bytes of its de-identified version, or a rejection.

Reading and writing live here so the engine core only sees datasets. PS3.15 E.1.1: the File
Meta Information and the preamble are replaced with a description of this application.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomIO
from pydicom.filereader import _read_command_set_elements, _read_file_meta_info, read_preamble
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from deid import __version__
from deid.engine.core import (
    Decision,
    Deidentified,
    Rejected,
    deidentify_dataset,
    sop_class_of,
    uids_of,
)
from deid.engine.quiet import reset_truncation, truncation_seen
from deid.engine.writer import (
    LONG_VRS,
    SHORT_VRS,
    UNDEFINED_LENGTH,
    fast_encoding,
    write_file,
)
from deid.keys import SecretKey
from deid.profile.model import Profile

IMPLEMENTATION_CLASS_UID = "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "deid-pipeline").int)
IMPLEMENTATION_VERSION = f"DEID_{__version__}"[:16]
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
SOP_INSTANCE = 0x00080018
# A bare data set read without a DICM prefix is taken as DICOM when it holds one of these:
# SOP Class and Instance UIDs, Modality, Patient's Name, Study Instance UID.
PLAUSIBLE = (0x00080016, 0x00080018, 0x00080060, 0x00100010, 0x0020000D)
T = TypeVar("T")
# A deflated data set (PS3.5 A.5) may inflate to at most this: pydicom inflates it whole, in
# one call, so a few MB crafted to inflate to GBs would otherwise exhaust a worker's memory.
MAX_INFLATED_BYTES = 512 << 20
_INFLATE_STEP = 16 << 20
# Sequence items and pixel data fragments an input may hold (PS3.5 7.5): an empty item is 8
# bytes in the file but a Dataset in pydicom, about 1.3 KiB and 0.1 ms while the engine works
# on it, so half a million items are about 650 MiB and a minute.
MAX_ITEMS = 500_000
_ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")  # (FFFE,E000) little, big endian
# Elements (and items) an explicit VR little endian data set may hold, deflated or not:
# pydicom keeps about 300 bytes per element and the engine takes some 60 microseconds on
# each, so 8 bytes of empty element cost 40 times more in memory; an inflated data set of
# 512 MiB could hold 64 million. One million: about 300 MiB and a minute.
MAX_ELEMENTS = 1_000_000
_DEFLATED = DeflatedExplicitVRLittleEndian.encode("ascii")  # the UID, as a meta header holds it
_HEADER, _LENGTH = struct.Struct("<HH2sH"), struct.Struct("<I")
_TAG_IN_MESSAGE = re.compile(r"With tag (\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\))")


class SinkError(Exception):
    """Writing the output failed (the sink, not the input): the caller reports it."""


@dataclass(frozen=True)
class Rejection:
    """Why an input was not written. The message names tags, never values."""

    reason: str
    message: str


@dataclass(frozen=True)
class Output:
    """A de-identified instance, ready to write, with what a manifest and a crosswalk need."""

    data: bytes | None = field(repr=False)  # None: deidentify_stream wrote it to its sink
    size: int  # of the encoded file, in bytes
    sha256: str | None  # of the encoded file, hex; None: not computed
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    transfer_syntax_uid: str
    profiles: tuple[str, ...]
    # (original, new) pairs: they re-identify, so they go to the linkage output only and are
    # kept out of the repr, where an accidental log line would show them.
    uid_map: tuple[tuple[str, str], ...] = field(repr=False)
    patient_ids: tuple[str, str] | None = field(repr=False)


def _count_items(chunk: bytes, tags: tuple[bytes, ...] = _ITEM_TAGS) -> int:
    """Occurrences of the commoner item tag; memchr first, since counting is slower."""
    return max((chunk.count(tag) for tag in tags if tag[:1] in chunk), default=0)


def _check_items(data: bytes) -> None:
    """Refuse data with more than MAX_ITEMS item tags; shorter data cannot hold that many (a
    tag takes 4 bytes) and is not scanned."""
    if len(data) > 4 * MAX_ITEMS:
        _refuse_items(_count_items(data))


def _refuse_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise Rejected("too_large", f"more than {MAX_ITEMS} sequence items or fragments")


def _refuse_elements(count: int) -> None:
    if count > MAX_ELEMENTS:
        raise Rejected("too_large", f"more than {MAX_ELEMENTS} elements")


def check_elements(data: bytes, implicit: bool, little: bool) -> None:
    """check_size's counts for a part of a data set whose encoding is known (a streamed
    file's elements after its pixel data): items always, elements in explicit VR little
    endian. Raises Rejected (too_large)."""
    _check_items(data)
    if little and not implicit:
        _refuse_elements(_count_elements(data))


def check_size(data: bytes) -> None:
    """Refuse, before pydicom parses anything, a file with more than MAX_ITEMS items (an
    upper bound: item tags counted as bytes), an explicit VR little endian data set with more
    than MAX_ELEMENTS elements, or a Deflated Explicit VR Little Endian data set that inflates
    beyond MAX_INFLATED_BYTES (measured in bounded steps) or to more items or elements. The
    data set starts where pydicom starts it: after preamble, meta and command groups."""
    _check_items(data)
    if len(data) < 8 * MAX_ELEMENTS and _DEFLATED not in data:
        return  # too short to hold too many elements, and not deflated: nothing else to count
    stream = io.BytesIO(data)
    try:
        read_preamble(stream, True)
        syntax = UID(str(_read_file_meta_info(stream).get("TransferSyntaxUID", "")))
        _read_command_set_elements(stream)
    except Exception:
        return  # no well-formed meta header: the parser says why
    if syntax != DeflatedExplicitVRLittleEndian:
        start = stream.tell()
        # A bare data set (no meta header) is parsed all the same: count it when its first
        # element reads as explicit VR little endian.
        bare = not syntax and data[start + 4:start + 6] in LONG_VRS | SHORT_VRS
        if bare or (syntax.is_transfer_syntax and not syntax.is_implicit_VR
                    and syntax.is_little_endian):
            _refuse_elements(_count_elements(data, start))
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    start = stream.tell()
    pending, inflated, items, tail = data[start:], 0, 0, b""
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
            inflated += len(chunk)
            if inflated > MAX_INFLATED_BYTES:
                raise Rejected("too_large", "the deflated data set inflates to more than "
                               f"{MAX_INFLATED_BYTES >> 20} MiB")
            # Deflated data is little endian; a tag may straddle two steps.
            little = _ITEM_TAGS[:1]
            items += _count_items(chunk, little) + _count_items(tail + chunk[:3], little)
            _refuse_items(items)
            tail, pending = chunk[-3:], inflater.unconsumed_tail
        _refuse_elements(_count_elements(zlib.decompress(data[start:], -zlib.MAX_WBITS)))
    except zlib.error:
        return  # corrupt deflate data: the parser rejects it as unreadable


def _count_elements(data: bytes, start: int = 0, limit: int = MAX_ELEMENTS) -> int:
    """Elements and items of an explicit VR little endian data set from `start` (PS3.5
    7.1.2, 7.5), at every depth, counted from their headers alone, up to just past `limit`.
    Sequences and items are entered, other values and pixel data fragments skipped. Where the
    headers stop making sense (an unknown VR, a length past the end) the count stops: pydicom
    judges. A data set too short to hold more than `limit` counts as 0, unwalked."""
    if len(data) - start < 8 * limit:
        return 0  # every element or item header takes 8 bytes at least: none can pass limit
    offset, count, fragments, end = start, 0, False, len(data) - 12
    while offset <= end and count <= limit:
        group, element, vr, length = _HEADER.unpack_from(data, offset)
        count += 1
        if group == 0xFFFE:  # an item or a delimiter: a tag and a 4-byte length, no VR
            offset += 8
            if element == 0xE0DD:
                fragments = False
            elif fragments and element == 0xE000:
                offset += _LENGTH.unpack_from(data, offset - 4)[0]
            continue
        if vr in LONG_VRS:
            length = _LENGTH.unpack_from(data, offset + 8)[0]
            offset += 12
        elif vr in SHORT_VRS:
            offset += 8
        else:
            break
        if vr == b"SQ":
            continue  # its items follow
        if length == UNDEFINED_LENGTH:
            fragments = True  # encapsulated pixel data: fragments until the delimiter
            continue
        offset += length
    return count


def read_dataset(data: bytes) -> Dataset:
    """Parse a DICOM file, with or without preamble and meta header. Raises Rejected."""
    if not data:
        raise Rejected("not_dicom", "the file is empty")
    check_size(data)
    return parse(io.BytesIO(data))


def parse(source: BinaryIO, stop_before_pixels: bool = False) -> Dataset:
    """Parse a non-empty DICOM file from a seekable binary stream (up to the top-level pixel
    data element when ``stop_before_pixels``). Raises Rejected."""
    try:
        return dcmread(source, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass  # no preamble or meta header: try as a bare data set below
    except RecursionError:
        raise Rejected("unreadable", "sequences nested too deeply to parse") from None
    except Exception as exc:  # pydicom raises many kinds; their messages may carry values
        raise Rejected("unreadable", f"cannot parse the file ({type(exc).__name__})") from None
    try:
        source.seek(0)
        dataset = dcmread(source, force=True, stop_before_pixels=stop_before_pixels)
    except RecursionError:
        raise Rejected("unreadable", "sequences nested too deeply to parse") from None
    except Exception:
        raise Rejected("not_dicom", "not a DICOM file (no DICM prefix, no data set)") from None
    if not any(tag in dataset for tag in PLAUSIBLE):
        raise Rejected("not_dicom", "not a DICOM file (no DICM prefix, no SOP Class and "
                       "Instance UIDs)")
    return dataset


def _check_complete(dataset: Dataset | None = None, size: int = 0) -> None:
    """pydicom returns what it could read of a truncated file; it must not pass as whole.
    Every top-level value must have its declared length, and the data must not stop inside
    the header of a further element."""
    truncated = truncation_seen()
    if dataset is not None and not truncated:
        end = 0
        for tag in dataset.keys():  # noqa: SIM118 - keys() does not decode values
            raw = dataset.get_item(tag)
            if not isinstance(raw, RawDataElement) or raw.value_tell is None:
                continue
            if raw.length != UNDEFINED_LENGTH:
                if isinstance(raw.value, bytes) and len(raw.value) != raw.length:
                    truncated = True
                end = max(end, raw.value_tell + raw.length)
            else:
                end = 0  # an undefined length: pydicom raises if its delimiter is missing
        trailing = size - end if end else 0
        truncated = truncated or 0 < trailing < 8
    if truncated:
        raise Rejected("unreadable", "the file ends inside an element (truncated)")


def _transfer_syntax(dataset: Dataset) -> UID:
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(str(meta.TransferSyntaxUID))
    implicit, little = dataset.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def write_dataset(dataset: Dataset, transfer_syntax: UID) -> bytes:
    """Encode with new File Meta Information and a zero preamble (PS3.15 E.1.1)."""
    buffer = io.BytesIO()
    encode(dataset, transfer_syntax, buffer)
    return buffer.getvalue()


def encode(dataset: Dataset, transfer_syntax: UID, sink: BinaryIO) -> None:
    """Write the dataset to ``sink`` as a file with new File Meta Information and a zero
    preamble (PS3.15 E.1.1). Raises Rejected when pydicom cannot encode it."""
    meta = FileMetaDataset()
    # Read without decoding the elements, which are then copied as they are.
    meta.MediaStorageSOPClassUID = sop_class_of(dataset)
    meta.MediaStorageSOPInstanceUID = uids_of(dataset, SOP_INSTANCE)[0]
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    dataset.file_meta = meta
    dataset.preamble = b"\x00" * 128
    implicit = fast_encoding(transfer_syntax)
    try:
        if implicit is None:
            dataset.save_as(sink, enforce_file_format=True)
        else:
            write_file(dataset, meta, implicit, DicomIO(sink))
    except (Rejected, SinkError):
        raise
    except Exception as exc:
        where = _TAG_IN_MESSAGE.search(str(exc))
        at = f" at {where.group(1)}" if where else ""
        raise Rejected("write_failed", f"cannot encode the data set{at} "
                       f"({type(exc).__name__})") from None


def deidentify_parsed(dataset: Dataset, size: int, profile: Profile, key: SecretKey,
                      trace: list[Decision] | None = None) -> tuple[Deidentified, UID]:
    """The checks and the profile, on a parsed file of ``size`` bytes, in the one order both
    the in-memory and the streaming path use. Returns the de-identified dataset and the
    transfer syntax to write it in; raises Rejected."""
    _check_complete(dataset, size)
    sop_class = sop_class_of(dataset)
    meta = getattr(dataset, "file_meta", None)
    if sop_class == DICOMDIR_SOP_CLASS or (
            meta is not None and meta.get("MediaStorageSOPClassUID") == DICOMDIR_SOP_CLASS):
        raise Rejected("dicomdir", "a DICOMDIR is not de-identified but recreated from the "
                       "de-identified files it references (PS3.15 E.1.1)")
    transfer_syntax = _transfer_syntax(dataset)
    result = deidentify_dataset(dataset, profile, key, trace, transfer_syntax)
    _check_complete()  # sequences are parsed as the engine reaches them
    if result.transfer_syntax is not None:  # pixels cleaned and possibly re-encoded
        transfer_syntax = UID(result.transfer_syntax)
    if not transfer_syntax.is_transfer_syntax:
        raise Rejected("unsupported_transfer_syntax", "the transfer syntax "
                       f"{transfer_syntax} cannot be written by this version")
    return result, transfer_syntax


def guarded(step: Callable[[], T]) -> T | Rejection:
    """Run one instance's de-identification; every failure but a SinkError becomes a
    Rejection whose message names tags and exception types, never values."""
    reset_truncation()
    try:
        return step()
    except Rejected as rejected:
        return Rejection(rejected.reason, rejected.message)
    except SinkError:
        raise
    except RecursionError:
        return Rejection("unreadable", "sequences nested too deeply to process")
    except Exception as exc:  # a value pydicom cannot decode or encode; messages may hold PHI
        return Rejection("unreadable", f"cannot process the data set ({type(exc).__name__})")


def output_of(result: Deidentified, transfer_syntax: UID, profile: Profile,
              data: bytes | None, size: int, sha256: str | None) -> Output:
    """What callers, the manifest and the crosswalks need of a written instance."""
    out = result.dataset
    return Output(
        data=data,
        size=size,
        sha256=sha256,
        sop_class_uid=str(out.SOPClassUID),
        sop_instance_uid=str(out.SOPInstanceUID),
        study_instance_uid=str(out.StudyInstanceUID),
        series_instance_uid=str(out.SeriesInstanceUID),
        modality=str(out.get("Modality", "") or ""),
        transfer_syntax_uid=str(transfer_syntax),
        profiles=profile.names,
        uid_map=tuple(sorted(result.uid_map.items())),
        patient_ids=result.patient_ids,
    )


def deidentify_bytes(data: bytes, profile: Profile, key: SecretKey,
                     trace: list[Decision] | None = None) -> Output | Rejection:
    """De-identify one file's bytes. Never raises for bad input: returns a Rejection."""
    def step() -> Output:
        result, transfer_syntax = deidentify_parsed(read_dataset(data), len(data), profile,
                                                    key, trace)
        encoded = write_dataset(result.dataset, transfer_syntax)
        return output_of(result, transfer_syntax, profile, encoded, len(encoded),
                         hashlib.sha256(encoded).hexdigest())
    return guarded(step)

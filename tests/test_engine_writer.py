"""deid.engine.writer writes what pydicom's dcmwrite writes, byte for byte, and the values the
engine pre-encodes read back as the values it meant."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom.data
import pytest
from compare import assert_same_both_ways
from dicom_factory import KEY, base_dataset, to_bytes
from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deid.engine import Output, deidentify_bytes, files
from deid.engine.dummy import dummy_value
from deid.engine.raw import raw_uids, values_of
from deid.engine.uids import replace_uid
from deid.engine.writer import encoded_elements, encoded_text
from deid.profile import load_profiles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"  # never copied here
TEST_FILES = sorted(p for p in (Path(pydicom.data.__file__).parent / "test_files").rglob("*")
                    if p.is_file() and p.suffix not in (".py", ".pyc")
                    and "__pycache__" not in p.parts)
PROFILES = [load_profiles(["basic"]), load_profiles(["tcia"]),
            load_profiles(["basic", "retain-safe-private", "clean-descriptors"])]


def _written_both_ways(data: bytes, profile, monkeypatch) -> tuple[object, object]:
    """The engine's output written by deid's writer, then by pydicom's dcmwrite alone."""
    ours = deidentify_bytes(data, profile, KEY)
    with monkeypatch.context() as patched:
        patched.setattr(files, "fast_encoding", lambda syntax: None)
        theirs = deidentify_bytes(data, profile, KEY)
    return ours, theirs


def _assert_written_as_pydicom_writes(paths: list[Path], monkeypatch) -> int:
    return assert_same_both_ways(paths, PROFILES, lambda data, profile: _written_both_ways(
        data, profile, monkeypatch))


def test_pydicom_test_files_are_written_as_pydicom_writes_them(monkeypatch):
    # Implicit and explicit VR, encapsulated pixel data, undefined lengths, character sets,
    # big endian and deflated (left to pydicom whole), under three profiles.
    assert _assert_written_as_pydicom_writes(TEST_FILES, monkeypatch) > 300


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the checkout")
def test_the_corpus_is_written_as_pydicom_writes_it(monkeypatch):
    paths = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() in (".dcm", ""))
    assert _assert_written_as_pydicom_writes(paths, monkeypatch) > 50


def test_an_implicit_source_re_encoded_explicit_is_left_to_pydicom(monkeypatch):
    """A data set written in another encoding than it was read in (pixels cleaned into
    explicit VR) goes through pydicom's own re-encoding, items and the pre-encoded markers
    and UIDs included."""
    source = base_dataset()
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D3000", "SRT", "Chest"
    source.AnatomicRegionSequence = Sequence([item])
    data = to_bytes(source, ImplicitVRLittleEndian)
    written = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(files, "fast_encoding", lambda syntax: None)
        dataset = files.read_dataset(data)
        result, _ = files.deidentify_parsed(dataset, len(data), PROFILES[0], KEY)
        sink = io.BytesIO()
        files.encode(result.dataset, ExplicitVRLittleEndian, sink)
        written.append(sink.getvalue())
    assert written[0] == written[1]
    out = dcmread(io.BytesIO(written[0]))
    assert not out.original_encoding[0]
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert out.AnatomicRegionSequence[0].CodeMeaning == "Chest"
    assert out.StudyInstanceUID != source.StudyInstanceUID


def _encoded_by_pydicom(tag: int, vr: str, value: str) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = True, True
    write_data_element(buffer, DataElement(tag, vr, value))
    return buffer.getvalue()[8:]  # after the tag and the length


@pytest.mark.parametrize("vr", ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
                                "SH", "ST", "TM", "UC", "UR", "UT"])
def test_a_dummy_value_is_encoded_as_pydicom_encodes_it(vr):
    value = dummy_value(vr)
    dataset = Dataset()
    encoded = encoded_text(dataset, 0x00100010, vr, value)
    assert encoded is not None
    assert encoded.value == _encoded_by_pydicom(0x00100010, vr, value)
    assert convert_raw_data_element(encoded).value == value


@pytest.mark.parametrize("value", ["1.2.3", "1.2.34", "2.25.1\\2.25.22", "", None])
def test_a_uid_is_padded_with_nul_as_pydicom_pads_it(value):
    encoded = encoded_text(Dataset(), 0x00080018, "UI", value)
    assert encoded is not None
    assert encoded.value == _encoded_by_pydicom(0x00080018, "UI", value or "")
    assert len(encoded.value) % 2 == 0


def test_a_value_that_is_not_ascii_is_left_to_pydicom():
    assert encoded_text(Dataset(), 0x00100010, "PN", "Müller") is None


@pytest.mark.parametrize(("implicit", "little"), [(True, True), (False, True), (False, False)])
def test_elements_encoded_once_read_back_as_built(implicit, little):
    built = Dataset()
    built.PatientIdentityRemoved = "YES"
    built.DeidentificationMethod = ["deid PS3.15 2026c", "basic"]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic"
    built.DeidentificationMethodCodeSequence = Sequence([code])
    encoded = encoded_elements(built, implicit, little)
    assert [int(e.tag) for e in encoded] == sorted(built.keys())
    for element in encoded:
        assert (element.is_implicit_VR, element.is_little_endian) == (implicit, little)
        value = convert_raw_data_element(element).value
        if element.VR == "SQ":
            assert value[0].CodeValue == "113100" and value[0].CodeMeaning == "Basic"
        else:
            assert value == built[element.tag].value


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_empty_elements_still_as_read_are_written_as_pydicom_writes_them(syntax, monkeypatch):
    """pydicom holds an empty value read from a file as a raw element without bytes and
    converts it when asked for it: the writer asks as pydicom's does."""
    source = base_dataset()
    source.add_new(0x300A0128, "DS", None)  # Table Top Vertical Position, empty
    source.add_new(0x00091010, "UN", b"")  # a private element, empty, kept as UN
    item = Dataset()
    item.add_new(0x300A0128, "DS", None)
    source.AnatomicRegionSequence = Sequence([item])
    data = to_bytes(source, syntax)
    assert dcmread(io.BytesIO(data)).get_item(0x300A0128, keep_deferred=True).value is None
    written = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(files, "fast_encoding", lambda syntax: None)
        dataset = dcmread(io.BytesIO(data))
        dataset.AnatomicRegionSequence  # noqa: B018 - parsed, its item's elements still raw
        sink = io.BytesIO()
        files.encode(dataset, syntax, sink)
        written.append(sink.getvalue())
    assert written[0] == written[1]


# UIDs read from their bytes decode as pydicom decodes them.

RAW_UID_VALUES = [b"1.2.3.4\0", b"1.2.3.4 ", b"1.2.3.4\0\0", b"1.2.3.4\t\0\0",
                  b"1.2.3.4 \0 \0", b"1.2.3.4\xa0\0\0", b" 1.2.3.4", b"1.2.3\\1.2.4 ",
                  b"1.2.3\\\\1.2.4\0", b"\\ ", b"  ", b"\0\0", b""]


@pytest.mark.parametrize("raw", RAW_UID_VALUES)
def test_raw_uids_are_the_values_pydicom_decodes(raw):
    element = RawDataElement(BaseTag(0x00200052), "UI", len(raw), raw, 0, False, True)
    assert raw_uids(element) == values_of(convert_raw_data_element(element).value)


def _with_frame_of_reference(raw: bytes, syntax: str) -> bytes:
    """A file whose Frame of Reference UID holds exactly ``raw`` (an even length)."""
    source = base_dataset()
    placeholder = ("9." + "7" * len(raw))[:len(raw)] if len(raw) > 1 else "9" * len(raw)
    source.FrameOfReferenceUID = placeholder
    data = to_bytes(source, syntax)
    assert data.count(placeholder.encode()) == 1
    return data.replace(placeholder.encode(), raw)


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
@pytest.mark.parametrize("raw", [b"1.2.3.4\t\0\0", b"1.2.3.4\xa0\0\0", b"  "])
def test_a_uid_is_replaced_the_same_with_and_without_a_trace(raw, syntax):
    """`deid explain` (a trace: every element decoded by pydicom) and a run (UIDs read from
    their bytes) write the same file; the UID is replaced as pydicom decodes it."""
    data = _with_frame_of_reference(raw, syntax)
    profile = PROFILES[0]
    run = deidentify_bytes(data, profile, KEY)
    explained = deidentify_bytes(data, profile, KEY, trace=[])
    assert isinstance(run, Output) and isinstance(explained, Output)
    assert run.data == explained.data
    assert run.uid_map == explained.uid_map
    if raw.strip(b"\0 "):
        assert ("1.2.3.4", replace_uid(KEY, "1.2.3.4")) in run.uid_map


@pytest.mark.parametrize("raw", [b"1.2.3.4\t\0\0", b"1.2.3.4\xa0\0\0"])
def test_a_required_uid_padded_beyond_one_character_is_valid_as_pydicom_reads_it(raw):
    source = base_dataset()
    source.SOPInstanceUID = "9." + "7" * (len(raw) - 2)
    data = to_bytes(source).replace(source.SOPInstanceUID.encode(), raw)
    result = deidentify_bytes(data, load_profiles(["basic", "retain-uids"]), KEY)
    assert isinstance(result, Output), result
    assert result.sop_instance_uid == "1.2.3.4"


# Markers are pre-encoded only when their text is the same in every character set.

@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 100"])
def test_a_profile_name_that_is_not_ascii_is_written_in_the_data_sets_character_set(
        charset, tmp_path):
    spec = tmp_path / "own.yaml"
    spec.write_text("name: Prüfung\nextends: [basic]\nrules: []\n", encoding="utf-8")
    profile = load_profiles([str(spec)])
    source = base_dataset()
    source.SpecificCharacterSet = charset
    result = deidentify_bytes(to_bytes(source), profile, KEY)
    assert isinstance(result, Output), result
    out = dcmread(io.BytesIO(result.data))
    assert "Prüfung" in out.DeidentificationMethod

"""deid.engine.raw reads elements still as read without decoding them, and says so only where
the bytes give what decoding would: the engine's fast path must never skip a value that holds
a name or ID."""

from __future__ import annotations

import pytest
from dicom_factory import KEY, base_dataset, to_bytes
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from deid.engine import deidentify_dataset
from deid.engine.files import read_dataset
from deid.engine.raw import coded_text, cores, has_value, may_hold, texts_of
from deid.profile import load_profiles

IMAGE_TYPE, MODALITY, PATIENT_ID = 0x00080008, 0x00080060, 0x00100020


def _raw(tag: int, vr: str, value: bytes) -> Dataset:
    ds = Dataset()
    ds[tag] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)
    return ds


def test_cores_are_the_words_no_other_word_is_part_of():
    assert cores(["DUBOIS", "PDUBOIS", "DUBOIS,CHLOE", "CHLOE", "2721"]) == (
        "2721", "CHLOE", "DUBOIS")
    assert cores([b"bench", b"benchp", b"p.bench"]) == (b"bench",)
    assert cores([]) == ()


@pytest.mark.parametrize(("value", "held"), [
    (b"ORIGINAL\\PRIMARY\\AXIAL ", False),
    (b"ORIGINAL\\PRIMARY\\DUBOIS CHLOE", True),
    (b"original\\primary\\dubois", True),  # any case
    (b"ORIGINAL\\PRIMARY\\XDUBOISX", True),  # in part: the caller decides on whole words
])
def test_may_hold_searches_ascii_bytes_in_any_case(value, held):
    assert may_hold(_raw(IMAGE_TYPE, "CS", value), IMAGE_TYPE, (b"dubois",)) is held


@pytest.mark.parametrize("value", [
    "ORIGINAL\\DUBOİS".encode(),  # not ASCII: only the decoded text can tell
    b"\x1b$B;3ED\x1b(B",  # ISO 2022 IR 87: 7-bit bytes that are not ASCII text
])
def test_may_hold_cannot_tell_from_bytes_that_are_not_ascii_text(value):
    assert may_hold(_raw(IMAGE_TYPE, "CS", value), IMAGE_TYPE, (b"dubois",)) is True


def test_may_hold_cannot_tell_from_a_decoded_element():
    ds = Dataset()
    ds[IMAGE_TYPE] = DataElement(IMAGE_TYPE, "CS", ["ORIGINAL", "PRIMARY"])
    assert may_hold(ds, IMAGE_TYPE, (b"dubois",)) is True


def test_coded_text_and_has_value_read_without_decoding():
    ds = _raw(MODALITY, "CS", b"US")
    ds[PATIENT_ID] = RawDataElement(BaseTag(PATIENT_ID), "LO", 2, b"  ", 0, False, True)
    assert coded_text(ds, MODALITY) == "US"
    assert not has_value(ds, PATIENT_ID)
    assert all(type(ds.get_item(tag)) is RawDataElement for tag in (MODALITY, PATIENT_ID))


@pytest.mark.parametrize(("tag", "vr", "value", "read"), [
    (0x00100010, "PN", b"Dubois^Chloe\\Doe^Jane ", ("PN", ["Dubois^Chloe", "Doe^Jane"])),
    (0x00104000, "LT", b"a\\b ", ("LT", ["a\\b"])),  # one value: a backslash is text
    (0x00100010, None, b"Dubois^Chloe", ("PN", ["Dubois^Chloe"])),  # implicit VR
    (0x0020000D, "UI", b"1.2.3\0", None),  # NULs: pydicom strips them its own way
    (0x00100010, "PN", "Müller".encode(), None),
    (0x00100010, "UN", b"Dubois", None),  # pydicom decodes it by the dictionary
    (0x00280011, "US", b"\x40\x01", None),  # bytes below 0x80 that are a number
    (0x00280011, None, b"\x40\x01", None),
    (0x00200013, "IS", b"0010", None),  # a number to pydicom
])
def test_texts_of_reads_ascii_text_as_pydicom_decodes_it(tag, vr, value, read):
    ds = Dataset()
    ds[tag] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, vr is None, True)
    assert texts_of(ds, tag) == read
    assert type(ds.get_item(tag)) is RawDataElement


def _deidentified(ds: Dataset) -> Dataset:
    dataset = read_dataset(to_bytes(ds))
    return deidentify_dataset(dataset, load_profiles(["basic"]), KEY).dataset


def test_coded_values_without_names_stay_as_read():
    ds = base_dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition = "HFS"
    out = _deidentified(ds)
    for tag in (IMAGE_TYPE, 0x00185100, MODALITY):
        assert type(out.get_item(tag)) is RawDataElement  # copied, not re-encoded
    assert list(out.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]


@pytest.mark.parametrize(("charset", "name", "word"), [
    (None, "Dubois^Chloe", "DUBOIS"),
    ("ISO_IR 192", "Müller^Jörg", "MÜLLER"),
])
def test_a_name_in_a_coded_value_is_cleaned(charset, name, word):
    ds = base_dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL", word]
    out = _deidentified(ds)
    assert list(out.ImageType) == ["DERIVED", "SECONDARY", "AXIAL", ""]  # the name gone


@pytest.mark.parametrize(("charset", "name", "word"), [
    (None, "Dubois^Chloe", "Dubois"),
    ("ISO_IR 192", "Müller^Jörg", "Müller"),
    # 7-bit bytes, each of them ASCII, that are not ASCII text (PS3.5 6.1.2.5.3)
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田川^太郎", "山田川"),
])
def test_a_name_in_kept_technical_text_is_removed_in_any_character_set(charset, name, word):
    ds = base_dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.ManufacturerModelName = f"Scanner {word} 3000"  # kept: reviewed technical text
    out = _deidentified(ds)
    assert out.ManufacturerModelName.startswith("Scanner")
    assert word not in out.ManufacturerModelName

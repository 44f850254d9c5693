"""What Table E.1-1 does not list (issue 12): a sequence's action covers its contents, only
registered UIDs stay, overlays go whole, the unlisted-attribute policy, safe private VRs, TCIA's
free text, and markers that tell what happened. Every instance is built here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from dicom_factory import KEY, base_dataset, code_item, sequence_of, to_bytes
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deid import standard
from deid.curator import tcia
from deid.curator.lint import lint
from deid.engine import deidentify_dataset
from deid.profile import load_profiles

DOCUMENT = "ANONYMIZED"


def run(ds: Dataset, *profiles: str) -> Dataset:
    return deidentify_dataset(ds, load_profiles(list(profiles or ["basic"])), KEY).dataset


# --- 1. a sequence's action covers its contents (Table E.1-1a) ------------------------------

def _content_item() -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.7"
    reference.DeviceSerialNumber = "SN-4471"  # a listed attribute, kept by an option
    reference.FrameLabel = "Jane's scan"  # unlisted text next to the reference
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "Doe^Jane was seen"
    item.ConceptNameCodeSequence = sequence_of(code_item())
    item.ReferencedSOPSequence = sequence_of(reference)
    item.add_new(0x00110010, "LO", "ACME 1")
    item.add_new(0x00111001, "LO", "Doe")
    return item


def test_a_dummied_sequence_is_not_entered_again_by_nested_rules():
    ds = base_dataset()
    ds.ContentSequence = sequence_of(_content_item())  # D under basic
    out = run(ds, "basic", "retain-device-identity")
    item = out.ContentSequence[0]
    reference = item.ReferencedSOPSequence[0]
    # The nested rules (X/Z/U* walking in, K from the option) do not decide again: D does.
    assert reference.FrameLabel == DOCUMENT
    assert reference.DeviceSerialNumber == DOCUMENT
    assert reference.ReferencedSOPInstanceUID.startswith("2.25.")
    assert reference.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert item.TextValue == DOCUMENT
    assert item.ValueType == "TEXT"  # codes and numbers are kept
    assert 0x00111001 not in item and 0x00110010 not in item


def test_a_kept_sequence_is_entered_with_the_rules():
    ds = base_dataset()
    ds.ContentSequence = sequence_of(_content_item())
    out = run(ds, "basic", "clean-structured-content")  # C: walks in, rules apply inside
    reference = out.ContentSequence[0].ReferencedSOPSequence[0]
    assert reference.DeviceSerialNumber != "SN-4471"  # basic's X/Z/D, not kept
    assert "Jane" not in str(reference.get("FrameLabel", ""))


# --- 2. only registered UIDs stay -----------------------------------------------------------

def test_uids_under_the_dicom_root_are_replaced_unless_registered():
    ds = base_dataset()
    ds.SOPInstanceUID = "1.2.840.10008.999.1.2.3"  # minted under the root: not registered
    ds.FrameOfReferenceUID = "1.2.840.10008.1.4.1.1"  # Talairach: PS3.6 Annex A
    out = run(ds)
    assert out.SOPInstanceUID.startswith("2.25.")
    assert out.FrameOfReferenceUID == "1.2.840.10008.1.4.1.1"
    assert out.SOPClassUID == ds.SOPClassUID


# --- 3. overlays and curves -----------------------------------------------------------------

def _with_overlay() -> Dataset:
    ds = base_dataset()
    ds.add_new(0x60000010, "US", 4)  # Overlay Rows
    ds.add_new(0x60000011, "US", 4)  # Overlay Columns
    ds.add_new(0x60000040, "CS", "G")  # Overlay Type
    ds.add_new(0x60000050, "SS", [1, 1])  # Overlay Origin
    ds.add_new(0x60000022, "LO", "Doe^Jane marked")  # Overlay Description
    ds.add_new(0x60001500, "LO", "Doe")  # Overlay Label
    ds.add_new(0x60003000, "OW", b"\x0f\x00")
    return ds


def test_basic_removes_the_whole_overlay():
    out = run(_with_overlay())
    assert not [tag for tag in out.keys() if tag >> 16 == 0x6000]  # noqa: SIM118


def test_clean_graphics_keeps_the_overlay_and_cleans_its_text():
    out = run(_with_overlay(), "basic", "clean-graphics")
    assert out[0x60003000].value == b"\x0f\x00"
    assert out[0x60000010].value == 4 and out[0x60000040].value == "G"
    assert "Doe" not in str(out[0x60000022].value) and "marked" in str(out[0x60000022].value)
    assert "Doe" not in str(out[0x60001500].value or "")


# --- 4. the unlisted-attribute policy -------------------------------------------------------

def test_unlisted_text_is_removed_emptied_or_dummied_by_its_type():
    ds = base_dataset()
    ds.DocumentTitle = "Report for Jane Doe"  # not in the CT IOD: removed
    ds.PatientBreedDescription = "Jane's"  # Type 2 in CT: emptied
    ds.PatientSpeciesDescription = "Jane's"  # Type 1(C) in CT: dummied
    ds.StorageMediaFileSetID = "DOE_JANE"
    ds.RetrieveURL = "https://pacs.example/studies/1.2.826.0.1.3680043.8.498.1"
    ds.ContentDescription = "Jane's images"
    ds.EncryptedAttributesSequence = sequence_of(Dataset())
    out = run(ds)
    assert "DocumentTitle" not in out and "StorageMediaFileSetID" not in out
    assert "RetrieveURL" not in out and "ContentDescription" not in out
    assert "EncryptedAttributesSequence" not in out
    assert out.PatientBreedDescription in ("", None)
    assert out.PatientSpeciesDescription == DOCUMENT


def test_reviewed_technical_text_codes_and_numbers_are_kept():
    ds = base_dataset()
    ds.Manufacturer, ds.ManufacturerModelName = "ACME", "Scanner 9000"
    ds.SoftwareVersions, ds.ConvolutionKernel = "VA10", "B30f"
    ds.SliceThickness, ds.BodyPartExamined = "1.25", "CHEST"
    ds.StudyDescription = "CT CHEST"  # removed by the table: its words stay in codes
    ds.AnatomicRegionSequence = sequence_of(code_item())
    out = run(ds)
    assert (out.Manufacturer, out.ManufacturerModelName) == ("ACME", "Scanner 9000")
    assert (out.SoftwareVersions, out.ConvolutionKernel) == ("VA10", "B30f")
    assert out.SliceThickness == 1.25 and out.BodyPartExamined == "CHEST"
    code = out.AnatomicRegionSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "T-D1100", "SRT", "Head")


def test_a_name_in_a_coded_value_is_cleaned():
    ds = base_dataset()
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL", "DOE"]
    out = run(ds)
    assert list(out.ImageType)[:3] == ["DERIVED", "SECONDARY", "AXIAL"]
    assert "DOE" not in list(out.ImageType)


def test_unknown_public_tags_and_retired_text_are_removed():
    assert not standard.in_dictionary(0x00189999)
    ds = base_dataset()
    ds.add(RawDataElement(Tag(0x00189999), "UN", 4, b"Doe ", 0, False, True))
    ds.add_new(0x00189998, "LO", "Doe^Jane")
    ds.add_new(0x40080042, "LO", "Jane Doe")  # Results ID Issuer, retired (a table row)
    ds.add_new(0x00280040, "CS", "RECT")  # Image Format, retired, not listed: a code
    ds.add_new(0x00080040, "US", 1)  # Data Set Type, retired number: kept
    out = run(ds)
    assert 0x00189999 not in out and 0x00189998 not in out and 0x40080042 not in out
    assert out[0x00080040].value == 1 and out[0x00280040].value == "RECT"


@pytest.mark.parametrize(("profile", "expected"), [
    ("basic", None), ("retain-long-modified-dates", "shifted"),
    ("retain-long-full-dates", "20200315101112")])
def test_unlisted_dates_follow_the_date_policy(profile: str, expected: str | None):
    ds = base_dataset()
    ds.StudyUpdateDateTime = "20200315101112"
    out = run(ds, "basic", profile)
    if expected is None:
        assert "StudyUpdateDateTime" not in out
    elif expected == "shifted":
        assert out.StudyUpdateDateTime != "20200315101112"
        assert out.StudyUpdateDateTime.endswith("101112")
    else:
        assert out.StudyUpdateDateTime == expected


def test_an_override_rule_adds_an_attribute_back(tmp_path: Path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\nextends: [basic]\nrules:\n"
                    "- {attribute: FrameLabel, action: keep}\n", encoding="utf-8")
    ds = base_dataset()
    ds.FrameLabel = "ARTERIAL"
    assert run(ds, str(mine)).FrameLabel == "ARTERIAL"
    assert "FrameLabel" not in run(base_dataset())


def test_reviewed_exceptions_are_checked_against_the_standard(tmp_path: Path):
    from deid.standard.generate import reviewed_exceptions

    dictionary = json.loads((Path(standard.__file__).parent / "data" /
                             "dictionary.json").read_text())["elements"]
    table = json.loads((Path(standard.__file__).parent / "data" /
                        "table_e1_1.json").read_text())["rows"]
    decided = {(keyword, action) for keyword, action, _ in reviewed_exceptions(dictionary, table)}
    assert {("Manufacturer", "K"), ("EncryptedAttributesSequence", "X")} <= decided
    for bad in ("PatientName", "NetworkID", "NoSuchKeyword"):  # listed, listed, unknown
        path = tmp_path / "reviewed.yaml"
        path.write_text(f"keep:\n- {{attribute: {bad}, reason: x}}\n", encoding="utf-8")
        with pytest.raises(ValueError):
            reviewed_exceptions(dictionary, table, path)


# --- 5. private attributes ------------------------------------------------------------------

def _with_private(vr: str, value: bytes, syntax: str) -> Dataset:
    """DLP (ELSCINT1 (00E1,xx21), DS in Table E.3.10-1) as a file carries it, read back."""
    ds = base_dataset()
    ds.add_new(0x00E10010, "LO", "ELSCINT1")
    ds.add_new(0x00E11021, vr, value)
    return dcmread(io.BytesIO(to_bytes(ds, syntax)))


@pytest.mark.parametrize(("vr", "value", "syntax", "kept"), [
    ("DS", "12.5", ExplicitVRLittleEndian, True),
    ("LO", "Doe^Jane", ExplicitVRLittleEndian, False),  # text where the table says DS
    ("UN", b"12.5", ExplicitVRLittleEndian, True),  # sent as UN: its bytes are a DS
    ("UN", b"Doe ", ExplicitVRLittleEndian, False),
    ("DS", "12.5", ImplicitVRLittleEndian, True),  # read without a VR
    ("LO", "Doe^Jane", ImplicitVRLittleEndian, False),
])
def test_safe_private_is_kept_only_with_the_tables_vr(vr, value, syntax, kept):
    out = run(_with_private(vr, value, syntax), "basic", "retain-safe-private")
    assert (0x00E11021 in out) is kept
    assert (0x00E10010 in out) is kept  # the creator goes with its last element


def test_tcia_cleans_the_free_text_its_knowledge_base_keeps():
    data = json.loads(tcia.DATA_FILE.read_text(encoding="utf-8"))
    rules, _, _ = tcia.private_rules(data, tcia.safe_private())
    text = [r for r in rules if set(r.vrs) <= tcia.FREE_TEXT_VRS and r.vrs]
    assert text and not [r for r in text if r.action == "K"]
    assert tcia._action("k", ["LO"]) == ("C", None) and tcia._action("k", ["DS"]) == ("K", None)


# --- 8. markers -----------------------------------------------------------------------------

def test_patient_identity_removed_only_with_basic(tmp_path: Path):
    alone = tmp_path / "alone.yaml"
    alone.write_text("name: alone\nrules:\n- {attribute: PatientName, action: X}\n",
                     encoding="utf-8")
    out = run(base_dataset(), str(alone))
    assert "PatientIdentityRemoved" not in out
    assert "113100" not in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert [f.kind for f in lint([str(alone)])] == ["basic"]
    basic = run(base_dataset())
    assert basic.PatientIdentityRemoved == "YES"
    assert basic.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert lint(["basic"]) == []


def test_temporal_marker_says_what_happened_to_this_instances_dates(tmp_path: Path):
    keeps = tmp_path / "keeps.yaml"
    keeps.write_text("name: keeps\nextends: [basic]\nrules:\n"
                     "- {attribute: StudyDate, action: keep}\n", encoding="utf-8")

    def dated() -> Dataset:
        ds = base_dataset()
        ds.StudyDate = "20200315"
        return ds

    marker = "LongitudinalTemporalInformationModified"
    assert run(dated())[marker].value == "REMOVED"
    assert run(dated(), str(keeps))[marker].value == "UNMODIFIED"
    assert run(dated(), "basic", "retain-long-modified-dates")[marker].value == "MODIFIED"
    assert run(dated(), "basic", "retain-long-full-dates")[marker].value == "UNMODIFIED"
    # No dates at all: what the profile says.
    assert run(base_dataset(), "basic", "retain-long-modified-dates")[marker].value == \
        "MODIFIED"

"""The engine's semantics, one behaviour at a time."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import pytest
from dicom_factory import (
    KEY,
    OTHER_KEY,
    SOP_UID,
    STUDY_UID,
    base_dataset,
    code_item,
    sequence_of,
    to_bytes,
)
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import EnhancedCTImageStorage, UltrasoundImageStorage
from pydicom.valuerep import validate_value

from deid.engine import Output, Rejection, deidentify_bytes, deidentify_dataset
from deid.engine.dates import patient_offset, shift_da, shift_dt
from deid.engine.dummy import dummy_value
from deid.engine.uids import hash_uid, replace_uid
from deid.keys import KeyUnavailable, SecretKey, resolve_key
from deid.profile import load_profiles

BASIC = load_profiles(["basic"])


def _run(ds: Dataset, *names: str, key: SecretKey = KEY) -> Dataset:
    return deidentify_dataset(ds, load_profiles(list(names) or ["basic"]), key).dataset


# --- dummy values -------------------------------------------------------------------------

@pytest.mark.parametrize("vr", ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
                                "SH", "ST", "TM", "UC", "UR", "UT", "FL", "FD", "SL", "SS",
                                "SV", "UL", "US", "UV", "OB", "OD", "OF", "OL", "OV", "OW"])
def test_dummy_value_is_valid_and_not_empty(vr: str):
    value = dummy_value(vr)
    assert value not in (None, "", b"")
    validate_value(vr, value, 2)  # raises on a value the VR does not allow


# --- compound codes by Type in the IOD ----------------------------------------------------

def test_compound_codes_follow_the_attribute_type_in_the_iod():
    ds = base_dataset()  # CT Image: AcquisitionDate Type 3, ContentDate Type 2
    ds.AcquisitionDate = "20200101"
    ds.ContentDate = "20200101"
    out = _run(ds)
    assert "AcquisitionDate" not in out  # X/Z, Type 3 -> X
    assert "ContentDate" in out and not out.ContentDate  # Z/D, Type 2 -> Z
    assert "PatientID" in out and not out.PatientID  # Z/D, Type 2 -> Z


def test_type_1_attribute_gets_a_dummy():
    ds = base_dataset(EnhancedCTImageStorage)  # Enhanced CT: ContentDate Type 1
    ds.ContentDate = "20200101"
    out = _run(ds)
    assert out.ContentDate == "19000101"


def test_unknown_sop_class_takes_the_last_alternative():
    ds = base_dataset("1.2.826.0.1.3680043.8.498.999")
    ds.AcquisitionDate = "20200101"  # X/Z -> Z
    ds.ContentDate = "20200101"  # Z/D -> D
    out = _run(ds)
    assert "AcquisitionDate" in out and not out.AcquisitionDate
    assert out.ContentDate == "19000101"


def test_attribute_outside_its_iod_is_removed():
    """E.1-1 notes: an attribute not defined in the IOD may simply be removed (X)."""
    ds = base_dataset()
    ds.StationName = "CT01"  # X/Z/D; General Equipment Type 3 in CT
    ds.TreatmentMachineName = "LINAC"  # X/Z; not in the CT Image IOD at all
    out = _run(ds)
    assert "StationName" not in out and "TreatmentMachineName" not in out


def test_reference_sequences_are_kept_with_their_uids_replaced():
    """X/Z/U*: basic chooses U (references stay whole, every UID in them replaced), whatever
    the Type: Referenced Image Sequence is Type 2 in a functional group (Z would empty it),
    Source Image Sequence Type 3 at the top (X would remove it)."""
    ds = base_dataset(EnhancedCTImageStorage)
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    shared = Dataset()
    shared.ReferencedImageSequence = sequence_of(ref)
    ds.SharedFunctionalGroupsSequence = sequence_of(shared)
    ds.SourceImageSequence = sequence_of(copy.deepcopy(ref))
    out = _run(ds)
    for sequence in (out.SharedFunctionalGroupsSequence[0].ReferencedImageSequence,
                     out.SourceImageSequence):
        assert sequence[0].ReferencedSOPInstanceUID == hash_uid(KEY, "1.2.3.4.5")
        assert sequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


def test_a_curator_x_z_u_still_resolves_by_type(tmp_path):
    (tmp_path / "p.yaml").write_text("name: c\nextends: [basic]\nrules:\n"
                                     "  - {attribute: ReferencedImageSequence, action: X/Z/U*}\n")
    ds = base_dataset(EnhancedCTImageStorage)
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    shared = Dataset()
    shared.ReferencedImageSequence = sequence_of(ref)  # Type 2 here -> Z
    ds.SharedFunctionalGroupsSequence = sequence_of(shared)
    out = deidentify_dataset(ds, load_profiles([str(tmp_path / "p.yaml")]), KEY).dataset
    assert len(out.SharedFunctionalGroupsSequence[0].ReferencedImageSequence) == 0


def test_what_the_table_removes_is_dummied_where_the_iod_requires_it():
    """Table E.1-1 says X for Presentation Creation Date and Time, Type 1 in a GSPS (E.1: the
    de-identifier keeps the IOD whole): dummied there, removed in a CT image, and removed in
    an instance of a SOP class no IOD table knows (the table's own X)."""
    gsps = base_dataset("1.2.840.10008.5.1.4.1.1.11.1")
    ct = base_dataset()
    unknown = base_dataset("1.2.826.0.1.3680043.8.498.999")
    for ds in (gsps, ct, unknown):
        ds.PresentationCreationDate = "20240115"
        ds.PresentationCreationTime = "101112"
    out = _run(gsps)
    assert (out.PresentationCreationDate, out.PresentationCreationTime) == ("19000101", "000000")
    for ds in (ct, unknown):
        out = _run(ds)
        assert "PresentationCreationDate" not in out and "PresentationCreationTime" not in out


@pytest.mark.parametrize("animal", [True, False])
def test_responsible_person_is_emptied_for_an_animal_and_removed_otherwise(animal: bool):
    """Responsible Person and Organization are Type 2C in the Patient Module, required if the
    patient is an animal (PS3.3 C.7.1.1); the table says X."""
    ds = base_dataset()
    ds.ResponsiblePerson = "Doe^John"
    ds.ResponsibleOrganization = "Doe Farm"
    if animal:
        ds.PatientSpeciesDescription = "Canine species"
    out = _run(ds)
    for keyword in ("ResponsiblePerson", "ResponsibleOrganization"):
        assert (keyword in out) is animal
        if animal:
            assert not out[keyword].value


@pytest.mark.parametrize(("names", "present"), [(("basic",), False),
                                                (("basic", "retain-long-modified-dates"), False),
                                                (("basic", "retain-long-full-dates"), True)])
def test_timezone_offset_is_removed_unless_dates_are_kept_whole(names: tuple, present: bool):
    """Modified dates (E.3.6) move whole days; the offset says where the times were taken, so
    its C removes it as Basic does (dummied +0000 where an IOD requires it)."""
    ds = base_dataset()
    ds.TimezoneOffsetFromUTC = "+0100"
    out = _run(ds, *names)
    assert ("TimezoneOffsetFromUTC" in out) is present
    assert dummy_value("SH", 0x00080201) == "+0000"


def test_retain_uids_keeps_the_uids_of_dummied_sr_content():
    """E.3.9: all UIDs retained, those of content items (UID (0040,A124), references in a
    dummied Content Sequence) included; under basic they are replaced like the rest."""
    ds = base_dataset("1.2.840.10008.5.1.4.1.1.88.34")  # Comprehensive 3D SR
    uidref = Dataset()
    uidref.ValueType = "UIDREF"
    uidref.UID = "1.2.826.0.1.3680043.8.498.77"
    image = Dataset()
    image.ValueType = "IMAGE"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.78"
    image.ReferencedSOPSequence = sequence_of(ref)
    ds.ContentSequence = sequence_of(uidref, image)
    kept = _run(copy.deepcopy(ds), "basic", "retain-uids").ContentSequence
    assert kept[0].UID == "1.2.826.0.1.3680043.8.498.77"
    assert kept[1].ReferencedSOPSequence[0].ReferencedSOPInstanceUID.endswith(".498.78")
    replaced = _run(ds).ContentSequence
    assert hash_uid(KEY, "1.2.826.0.1.3680043.8.498.77") == replaced[0].UID


# --- sequences and references -------------------------------------------------------------

def test_references_map_like_the_uids_they_point_to():
    target = base_dataset()
    target.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.7"
    referencing = base_dataset("1.2.840.10008.5.1.4.1.1.88.22")  # Enhanced SR
    ref = Dataset()
    ref.ReferencedSOPClassUID = target.SOPClassUID
    ref.ReferencedSOPInstanceUID = target.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = target.SeriesInstanceUID
    series.ReferencedSOPSequence = sequence_of(ref)
    study = Dataset()
    study.StudyInstanceUID = target.StudyInstanceUID
    study.ReferencedSeriesSequence = sequence_of(series)
    referencing.CurrentRequestedProcedureEvidenceSequence = sequence_of(study)
    new_target = _run(target)
    out = _run(referencing)
    evidence = out.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == new_target.StudyInstanceUID
    assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == new_target.SeriesInstanceUID
    item = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert item.ReferencedSOPInstanceUID == new_target.SOPInstanceUID
    assert item.ReferencedSOPClassUID == target.SOPClassUID  # a well-known UID: kept


def test_rules_apply_at_any_depth():
    ds = base_dataset()
    inner = Dataset()
    inner.PatientName = "Doe^John"
    inner.PatientBirthDate = "19800101"
    deeper = Dataset()
    deeper.OtherPatientIDsSequence = sequence_of(inner)
    ds.ReferencedPatientSequence = sequence_of(deeper)  # X in Basic: removed whole
    ds.AnatomicRegionSequence = sequence_of(code_item())  # not in the table: kept, recursed
    ds.AnatomicRegionSequence[0].OperatorsName = "Smith^Ann"
    out = _run(ds)
    assert "ReferencedPatientSequence" not in out
    # X/Z/D where the IOD does not define it at this path: the conservative D.
    assert out.AnatomicRegionSequence[0].OperatorsName == "ANONYMIZED"
    assert out.AnatomicRegionSequence[0].CodeValue == "T-D1100"


def test_dummied_sequence_keeps_structure_and_dummies_text():
    ds = base_dataset("1.2.840.10008.5.1.4.1.1.88.11")  # Basic Text SR
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "Jane Doe has a history of ..."
    item.ConceptNameCodeSequence = sequence_of(code_item("121071", "DCM", "Finding"))
    ds.ContentSequence = sequence_of(item)  # D in Basic
    out = _run(ds)
    assert out.ContentSequence[0].ValueType == "TEXT"
    assert out.ContentSequence[0].TextValue == "ANONYMIZED"


def test_a_sequence_sent_as_un_is_processed_as_a_sequence():
    # Found by `deid verify`: rtdose_rle.dcm holds ReferencedRTPlanSequence with VR UN in an
    # explicit VR file; it was kept unprocessed, its ReferencedSOPInstanceUID unreplaced.
    data = Path(get_testdata_file("rtdose_rle.dcm")).read_bytes()
    original = dcmread(io.BytesIO(data)).ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
    result = deidentify_bytes(data, BASIC, KEY)
    assert isinstance(result, Output)
    item = dcmread(io.BytesIO(result.data)).ReferencedRTPlanSequence[0]
    assert item.ReferencedSOPInstanceUID == replace_uid(KEY, original)

def test_an_element_with_an_invalid_vr_is_rejected():
    # Found by tests/test_fuzz.py: ImageType with VR 'C[' was kept and written as read, and
    # pydicom then read the output as implicit VR, one element swallowing the whole file.
    data = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    at = data.index(b"\x08\x00\x08\x00CS") + 4
    data[at:at + 2] = b"C["
    result = deidentify_bytes(bytes(data), BASIC, KEY)
    assert result == Rejection("unreadable", "ImageType (0008,0008) has no valid VR and the "
                                             "profile keeps it")

# --- UIDs ---------------------------------------------------------------------------------

def test_uid_hash_is_keyed_deterministic_and_valid():
    uid = hash_uid(KEY, STUDY_UID)
    assert uid == hash_uid(SecretKey(b"test-key-0123456789abcdef", "again"), STUDY_UID)
    assert uid != hash_uid(OTHER_KEY, STUDY_UID)
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid) and len(uid) <= 64
    assert int(uid[5:]) < 2**128


def test_well_known_uids_are_never_replaced():
    for uid in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.2.16.4"):
        assert replace_uid(KEY, uid) == uid


def test_file_meta_follows_the_new_sop_instance_uid_and_preamble_is_blank():
    ds = base_dataset()
    ds.file_meta = Dataset()
    data = to_bytes(ds)
    result = deidentify_bytes(data, BASIC, KEY)
    assert isinstance(result, Output)
    out = dcmread(io.BytesIO(result.data))
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID == hash_uid(KEY, SOP_UID)
    assert out.preamble == b"\x00" * 128
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert result.uid_map and dict(result.uid_map)[SOP_UID] == out.SOPInstanceUID


def test_same_key_same_output_bytes_other_key_other_uids():
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    first = deidentify_bytes(data, BASIC, KEY)
    second = deidentify_bytes(data, BASIC, KEY)
    other = deidentify_bytes(data, BASIC, OTHER_KEY)
    assert isinstance(first, Output) and isinstance(second, Output) and isinstance(other, Output)
    assert first.data == second.data
    assert first.sop_instance_uid != other.sop_instance_uid


# --- dates --------------------------------------------------------------------------------

def test_dates_shift_by_one_offset_per_patient_keeping_intervals():
    profile = load_profiles(["retain-long-modified-dates"])
    a, b = base_dataset(), base_dataset()
    a.StudyDate, a.AcquisitionDateTime = "20200301", "20200301120000.5+0100"
    b.StudyDate = "20200311"
    out_a = deidentify_dataset(a, profile, KEY).dataset
    out_b = deidentify_dataset(b, profile, KEY).dataset
    days = patient_offset(KEY, "PID-0001", profile.date_shift)
    assert profile.date_shift.min_days <= days <= profile.date_shift.max_days
    assert out_a.StudyDate == shift_da("20200301", days) != "20200301"
    assert out_a.AcquisitionDateTime == shift_dt("20200301120000.5+0100", days)
    assert out_a.AcquisitionDateTime.endswith("120000.5+0100")
    import datetime as dt

    def as_date(value):
        return dt.datetime.strptime(value, "%Y%m%d")
    assert (as_date(out_b.StudyDate) - as_date(out_a.StudyDate)).days == 10
    assert out_a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_offset_depends_on_key_and_patient():
    profile = load_profiles(["retain-long-modified-dates"])
    offsets = {patient_offset(KEY, f"P{i}", profile.date_shift) for i in range(20)}
    assert len(offsets) > 15
    assert patient_offset(KEY, "P1", profile.date_shift) != patient_offset(
        OTHER_KEY, "P1", profile.date_shift)


def test_dates_shift_multi_valued_and_nested_and_unparseable_removed():
    ds = base_dataset()
    ds.CalibrationDate = ["20200101", "20200105"]
    item = Dataset()
    item.ObservationDateTime = "20200101"
    ds.AcquisitionContextSequence = sequence_of(item)
    ds.PerformedProcedureStepStartDate = "not a date"
    out = _run(ds, "retain-long-modified-dates")
    days = patient_offset(KEY, "PID-0001", BASIC.date_shift)
    assert list(out.CalibrationDate) == [shift_da("20200101", days), shift_da("20200105", days)]
    assert out.PerformedProcedureStepStartDate in ("", None) or (
        "PerformedProcedureStepStartDate" not in out)


def test_dt_keeps_precision_and_offset():
    assert shift_dt("2020", 1) == "2020"
    assert shift_dt("202012", 31) == "202101"
    assert shift_dt("20201231235959.123456-0500", 1) == "20210101235959.123456-0500"
    assert shift_dt("2020-12-31", 1) is None


def test_longitudinal_marker_per_option():
    assert _run(base_dataset()).LongitudinalTemporalInformationModified == "REMOVED"
    full = _run(base_dataset(), "retain-long-full-dates")
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"


# --- private attributes -------------------------------------------------------------------

def _with_private(block: int) -> Dataset:
    ds = base_dataset()
    ds.add_new(0x00190000 | block, "LO", "GEMS_ACQU_01")
    ds.add_new(0x00190000 | block << 8 | 0x23, "DS", "1.5")  # Table E.3.10-1: safe
    ds.add_new(0x00190000 | block << 8 | 0x42, "LO", "Jane")  # not in the table
    return ds


@pytest.mark.parametrize("block", [0x10, 0x11, 0x4A])
def test_safe_private_matches_creator_and_offset_in_any_block(block: int):
    out = _run(_with_private(block), "retain-safe-private")
    assert out[0x00190000 | block << 8 | 0x23].value == "1.5"
    assert 0x00190000 | block << 8 | 0x42 not in out
    assert out[0x00190000 | block].value == "GEMS_ACQU_01"


def test_private_creator_goes_with_its_last_element():
    ds = _with_private(0x10)
    ds.add_new(0x00190011, "LO", "SOMEONE ELSE")
    ds.add_new(0x00191101, "LO", "secret")
    out = _run(ds, "retain-safe-private")
    assert 0x00190011 not in out and 0x00191101 not in out
    assert 0x00190010 in out


def test_basic_removes_all_private_attributes():
    out = _run(_with_private(0x10))
    assert not any(tag.group % 2 for tag in out.keys())  # noqa: SIM118


def test_private_element_without_creator_is_removed():
    ds = base_dataset()
    ds.add_new(0x00191023, "DS", "1.5")
    out = _run(ds, "retain-safe-private")
    assert 0x00191023 not in out


# --- markers, rejections, pixels ----------------------------------------------------------

def test_markers_name_the_profiles_and_codes():
    out = _run(base_dataset(), "basic", "retain-uids", "retain-device-identity")
    assert out.PatientIdentityRemoved == "YES"
    assert list(out.DeidentificationMethod)[1:] == ["basic", "retain-uids",
                                                    "retain-device-identity"]
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113110", "113109"]
    assert all(item.CodingSchemeDesignator == "DCM"
               for item in out.DeidentificationMethodCodeSequence)


@pytest.mark.parametrize(("modality", "burned", "rejected"), [
    ("US", None, True), ("SC", None, True), ("US", "NO", False), ("CT", "YES", True),
    ("CT", None, False), ("XC", None, True)])
def test_burned_in_annotation_policy(modality: str, burned: str | None, rejected: bool):
    ds = base_dataset(UltrasoundImageStorage, modality)
    if burned:
        ds.BurnedInAnnotation = burned
    result = deidentify_bytes(to_bytes(ds), BASIC, KEY)
    assert isinstance(result, Rejection) == rejected
    if rejected:
        assert result.reason == "burned_in_annotation"
        assert "(0028,0301)" in result.message


def test_clean_pixel_data_without_a_rule_still_rejects_burned_in():
    ds = base_dataset(UltrasoundImageStorage, "US")
    result = deidentify_bytes(to_bytes(ds), load_profiles(["clean-pixel-data"]), KEY)
    assert isinstance(result, Rejection) and result.reason == "burned_in_annotation"
    assert "no pixel-cleaning rule" in result.message


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "not_dicom"), (b"\x00" * 500, "not_dicom"), (b"hello world" * 40, "not_dicom")])
def test_non_dicom_input_is_rejected_cleanly(data: bytes, reason: str):
    result = deidentify_bytes(data, BASIC, KEY)
    assert isinstance(result, Rejection) and result.reason == reason


def test_missing_uids_are_rejected_naming_the_tag_not_the_value():
    ds = base_dataset()
    del ds.StudyInstanceUID
    result = deidentify_bytes(to_bytes(ds), BASIC, KEY)
    assert isinstance(result, Rejection) and result.reason == "missing_attribute"
    assert "(0020,000D)" in result.message and "Doe" not in result.message


@pytest.mark.parametrize("cut", [3000, 1000, 500, 7, 1])
def test_truncated_file_is_rejected(cut: int):
    """pydicom reads what it can of a truncated file; that must never pass as whole."""
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    size = cut if cut > 100 else len(data) - cut
    result = deidentify_bytes(data[:size], BASIC, KEY)
    assert isinstance(result, Rejection) and result.reason == "unreadable"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm",
                                  "MR_small_bigendian.dcm", "JPEG-lossy.dcm"])
def test_pixel_data_is_byte_identical(name: str):
    path = get_testdata_file(name)
    original = dcmread(path)
    result = deidentify_bytes(Path(path).read_bytes(), BASIC, KEY)
    assert isinstance(result, Output), result
    out = dcmread(io.BytesIO(result.data))
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.PixelData == original.PixelData


def test_group_0004_and_group_lengths_are_removed():
    ds = base_dataset()
    ds.add_new(0x00041500, "CS", "DIR")
    ds.add_new(0x00080000, "UL", 100)
    out = _run(ds)
    assert 0x00041500 not in out and 0x00080000 not in out


# --- the key ------------------------------------------------------------------------------

def test_key_comes_from_env_or_file_and_never_shows(monkeypatch, tmp_path):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    with pytest.raises(KeyUnavailable, match="DEID_SECRET"):
        resolve_key()
    assert resolve_key(throwaway=True).origin == "a throwaway random key"
    monkeypatch.setenv("DEID_SECRET", "s3cret-value-long-enough")
    key = resolve_key()
    assert "s3cret" not in repr(key) and "s3cret" not in str(key)
    path = tmp_path / "key"
    path.write_text("file-secret-long-enough\n")
    assert resolve_key(str(path)).origin.startswith("file")
    with pytest.raises(KeyUnavailable):
        SecretKey(b"short", "test")


def test_a_template_reading_another_template_gets_its_rendered_value(tmp_path):
    """Templates render in dependency order: an original value is never copied."""
    (tmp_path / "p.yaml").write_text(
        "name: t\nextends: [basic]\nrules:\n"
        "  - {attribute: PatientName, action: replace, template: '{PatientID}'}\n"
        "  - {attribute: PatientID, action: replace, template: 'SUBJ-{hash}'}\n")
    out = deidentify_dataset(base_dataset(), load_profiles([str(tmp_path / "p.yaml")]),
                             KEY).dataset
    assert out.PatientID.startswith("SUBJ-") and "PID-0001" not in str(out.PatientName)
    assert str(out.PatientName) == out.PatientID


def test_a_sequence_is_traced_with_its_own_decision():
    """The trace of a sequence the engine descends into shows the sequence's action, not
    that of its last nested element."""
    ds = base_dataset()
    item = code_item()
    item.OperatorsName = "Smith^Ann"  # removed or dummied inside the kept sequence
    ds.AnatomicRegionSequence = sequence_of(item)
    trace: list = []
    deidentify_dataset(ds, BASIC, KEY, trace)
    (decision,) = [d for d in trace if d.path == "AnatomicRegionSequence"]
    assert decision.action == "K" and decision.rule is None


def test_a_curator_compound_code_on_an_unextracted_attribute_is_conservative(tmp_path):
    """Types were extracted only for Table E.1-1's compound attributes; elsewhere the Type is
    unknown, so the last alternative applies rather than removal."""
    (tmp_path / "p.yaml").write_text("name: c\nextends: [basic]\nrules:\n"
                                     "  - {attribute: StudyDate, action: X/Z}\n")
    ds = base_dataset()
    ds.StudyDate = "20200101"
    out = deidentify_dataset(ds, load_profiles([str(tmp_path / "p.yaml")]), KEY).dataset
    assert "StudyDate" in out and not out.StudyDate


def test_output_repr_hides_data_and_crosswalks():
    result = deidentify_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes(), BASIC, KEY)
    assert isinstance(result, Output)
    assert "uid_map" not in repr(result) and "1CT1" not in repr(result)
    assert result.patient_ids == ("1CT1", "")  # Basic empties PatientID: a row to ""


def test_a_sealed_lookup_holds_no_original_and_maps_the_same(tmp_path):
    (tmp_path / "ids.csv").write_text("original,code\nPID-0001,SUBJ-01\n")
    (tmp_path / "p.yaml").write_text("name: x\nextends: [basic]\nrules:\n"
                                     "  - {attribute: PatientID, action: lookup, file: ids.csv}\n")
    profile = load_profiles([str(tmp_path / "p.yaml")])
    sealed = profile.with_sealed_lookups(KEY)
    table = sealed.by_tag[0x00100020][0].lookup.table
    assert "PID-0001" not in table and list(table.values()) == ["SUBJ-01"]
    assert deidentify_dataset(base_dataset(), profile, KEY).dataset.PatientID == "SUBJ-01"
    assert deidentify_dataset(base_dataset(), sealed, KEY).dataset.PatientID == "SUBJ-01"
    unknown = base_dataset()
    unknown.PatientID = "PID-0002"
    result = deidentify_bytes(to_bytes(unknown), sealed, KEY)
    assert isinstance(result, Rejection) and result.reason == "lookup_missing"
    assert "PID-0002" not in result.message


def test_cleaning_that_empties_a_type_1_attribute_leaves_a_dummy():
    """Structure Set Label is Type 1 in an RT Structure Set: cleaned of the patient's ID to
    nothing, it gets a dummy (the IOD stays whole); Type 3 text cleaned to nothing stays
    empty."""
    ds = base_dataset("1.2.840.10008.5.1.4.1.1.481.3")
    ds.StructureSetLabel = ds.PatientID
    ds.SeriesDescription = ds.PatientID
    out = _run(ds, "basic", "clean-descriptors")
    assert out.StructureSetLabel == "ANONYMIZED"
    assert not out.SeriesDescription

"""Issue 12, tried as an adversarial curator: fake identifying values hidden where
de-identifiers usually miss them, at every depth, under `basic`, `tcia` and basic with Clean
Descriptors. The test knows what it injected: no injected value may survive in any decoded
text of any element (private and undecodable ones included) or in the file's bytes, in any
spelling injected, case-insensitively; and `deid verify` must report a finding whenever an
injected value is written back into a correct output at the place it was."""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable, Iterator

import dicom_factory
import pytest
from dicom_factory import KEY, base_dataset, code_item, sequence_of, to_bytes
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from deid.engine import Output, deidentify_bytes
from deid.profile import load_profiles
from deid.verify import verify_pair

NAME, FAMILY, GIVEN = "Moriarty^James", "Moriarty", "James"
PATIENT_ID, ACCESSION = "MRN4471982", "ACC77312"
BIRTH_DATE = "19610312"
ADDRESS, PHONE, EMAIL = "221B Baker Street", "555-867-5309", "jmoriarty@example.org"
REFERRING, INSTITUTION = "Watson^John", "Reichenbach General Hospital"
UMLAUT_NAME = "Müller^Jürgen"
# Every spelling the cases inject, searched for in the outputs.
SPELLINGS = [FAMILY, GIVEN, PATIENT_ID, ACCESSION, "4471982", "77312", BIRTH_DATE,
             "12-MAR-1961", "3/12/61", "03/12/1961", "1961-03-12", "12.03.1961", "12MAR1961",
             "221B", "Baker", "867-5309", EMAIL, "Watson", "Reichenbach", "Müller", "Jürgen",
             "Adler", "Rivoli", "Hudson"]
UID_LEAK = re.compile("|".join(re.escape(uid) + r"(?![0-9]|\.[0-9])"
                               for uid in (dicom_factory.SOP_UID, dicom_factory.SERIES_UID,
                                           dicom_factory.STUDY_UID)))
# Descriptors clean must leave alone (the false-positive guard).
DESCRIPTORS = {"StudyDescription": "CT CHEST W CONTRAST", "SeriesDescription": "AX T2 FLAIR",
               "ImageComments": "LYMPH NODE"}


def _patient() -> Dataset:
    ds = base_dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH_DATE
    ds.AccessionNumber, ds.ReferringPhysicianName = ACCESSION, REFERRING
    ds.InstitutionName, ds.PatientAddress = INSTITUTION, ADDRESS
    ds.PatientTelephoneNumbers = PHONE
    ds.StudyDate = "20200315"
    return ds


def _item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _reference(sop_instance: str = "1.2.826.0.1.3680043.8.498.9") -> Dataset:
    return _item(ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                 ReferencedSOPInstanceUID=sop_instance)


def unlisted_public_text(ds: Dataset) -> None:
    ds.DocumentTitle = f"Report for {GIVEN} {FAMILY}"
    ds.FrameLabel = FAMILY
    ds.ContentLabel = FAMILY.upper()  # CS
    ds.ContentDescription = f"{FAMILY} {PHONE}"
    ds.FileSetID = ACCESSION
    ds.RetrieveURL = f"https://pacs.example.org/wado/studies/{dicom_factory.STUDY_UID}"


def retired_attributes(ds: Dataset) -> None:
    ds.add_new(0x00080010, "SH", FAMILY.upper())  # Recognition Code
    ds.add_new(0x00402017, "LO", ACCESSION)  # Filler Order Number / Imaging Service Request
    ds.add_new(0x40080300, "ST", f"{FAMILY} {PHONE}")  # Impressions
    ds.add_new(0x00101000, "LO", [f"{PATIENT_ID}-B", "Reichenbach-9"])  # Other Patient IDs


def content_sequence(ds: Dataset) -> None:
    text = _item(RelationshipType="CONTAINS", ValueType="TEXT",
                 ConceptNameCodeSequence=sequence_of(code_item("121071", "DCM", "Finding")),
                 TextValue=f"Patient {GIVEN} {FAMILY}, DOB 12-MAR-1961, {ADDRESS}, "
                           f"tel {PHONE}, {EMAIL}")
    # A reference nested in a content item, with text beside it.
    text.ReferencedSOPSequence = sequence_of(_reference())
    text.ReferencedSOPSequence[0].add_new(0x00081160, "IS", "1")
    nested = _item(RelationshipType="CONTAINS", ValueType="TEXT",
                   TextValue=f"{NAME} seen by {REFERRING} on 3/12/61")
    text.ContentSequence = sequence_of(nested)
    ds.ContentSequence = sequence_of(
        text, _item(RelationshipType="CONTAINS", ValueType="PNAME", PersonName=NAME),
        _item(RelationshipType="CONTAINS", ValueType="DATE", Date=BIRTH_DATE),
        _item(RelationshipType="CONTAINS", ValueType="DATETIME", DateTime=BIRTH_DATE + "101010"),
        _item(RelationshipType="CONTAINS", ValueType="TEXT", TextValue="consulted Dr. Irene Adler"))


def referenced_sequences(ds: Dataset) -> None:
    image = _reference()
    image.add_new(0x00204000, "LT", f"{FAMILY.upper()} {PHONE}")  # Image Comments
    ds.ReferencedImageSequence = sequence_of(image)
    step = _reference("1.2.826.0.1.3680043.8.498.10")
    step.add_new(0x00400254, "LO", f"{FAMILY} procedure")  # PPS Description
    ds.ReferencedPerformedProcedureStepSequence = sequence_of(step)
    study = _reference("1.2.826.0.1.3680043.8.498.11")
    study.StudyDescription = f"Study of {GIVEN} {FAMILY}"
    ds.ReferencedStudySequence = sequence_of(study)


def request_attributes(ds: Dataset) -> None:
    ds.RequestAttributesSequence = sequence_of(_item(
        RequestedProcedureID=ACCESSION, ScheduledProcedureStepID=ACCESSION,
        ScheduledProcedureStepDescription=f"for {FAMILY.upper()}", AccessionNumber=ACCESSION,
        ReferringPhysicianName=REFERRING,
        ReferencedStudySequence=sequence_of(_reference("1.2.826.0.1.3680043.8.498.12"))))


def issuer_qualifiers(ds: Dataset) -> None:
    facility = _item(LocalNamespaceEntityID=INSTITUTION)
    ds.IssuerOfPatientID = "Reichenbach"
    ds.IssuerOfPatientIDQualifiersSequence = sequence_of(_item(
        UniversalEntityID="reichenbach.example.org", UniversalEntityIDType="DNS",
        IdentifierTypeCode="MR", AssigningFacilitySequence=sequence_of(facility)))
    other = _item(PatientID=f"{PATIENT_ID}-B", IssuerOfPatientID="Reichenbach",
                  TypeOfPatientID="TEXT")
    other.IssuerOfPatientIDQualifiersSequence = sequence_of(_item(UniversalEntityID=INSTITUTION))
    ds.OtherPatientIDsSequence = sequence_of(other)


def private_unknown_creator(ds: Dataset) -> None:
    block = ds.private_block(0x0011, "MYSITE EXTRAS", create=True)
    block.add_new(0x01, "LO", f"{GIVEN} {FAMILY}")
    block.add_new(0x02, "UN", f"{NAME} ".encode())
    block.add_new(0x03, "SQ", sequence_of(_item(PatientName=NAME, PatientID=PATIENT_ID)))
    ds.add_new(0x00191001, "LO", f"{FAMILY} without a creator")


def private_known_creator(ds: Dataset) -> None:
    ctp = ds.private_block(0x0013, "CTP", create=True)  # TCIA keeps these free texts
    ctp.add_new(0x10, "LO", f"{FAMILY} Project")
    ctp.add_new(0x12, "LO", INSTITUTION)
    ctp.add_new(0x13, "LO", PATIENT_ID)
    ge = ds.private_block(0x0053, "GEHC_CT_ADVAPP_001", create=True)
    ge.add_new(0x20, "LO", f"{FAMILY} {PHONE}")  # TCIA keeps it as IS/OB
    ge.add_new(0x64, "UN", FAMILY.encode())  # IS/OB/UN
    fuji = ds.private_block(0x0025, "FDMS 1.0", create=True)
    fuji.add_new(0x11, "UN", NAME.encode())  # OB/UN/US
    elscint = ds.private_block(0x00E1, "ELSCINT1", create=True)
    elscint.add_new(0x21, "LO", f"{EMAIL}")  # a safe private DS (Table E.3.10-1)


def private_uid(ds: Dataset) -> None:
    block = ds.private_block(0x0029, "MMCPrivate", create=True)
    block.add_new(0xD5, "UI", dicom_factory.SOP_UID)  # TCIA keeps it (Enhanced SOP Instance UID)


def binary_public_attributes(ds: Dataset) -> None:
    ds.add_new(0x00189923, "OB", f"{NAME} {PATIENT_ID} ".encode())  # a UT sent as OB
    ds.add_new(0x00281201, "OW", f"{NAME} ".encode())  # Red Palette Color LUT Data
    ds.add_new(0x00660023, "OW", f"{NAME} ".encode())  # Triangle Point Index List, retired


def overlays(ds: Dataset) -> None:
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    ds.add_new(0x60000022, "LO", f"{FAMILY} scout")  # Overlay Description
    ds.add_new(0x60001500, "LO", FAMILY.upper())  # Overlay Label


def coded_values(ds: Dataset) -> None:
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL", f"{FAMILY.upper()} {GIVEN.upper()}"]
    ds.BodyPartExamined = PATIENT_ID
    ds.add_new(0x00181030, "LO", "CT CHEST W CONTRAST")  # Protocol Name


def dates_in_comments(ds: Dataset) -> None:
    ds.ImageComments = "DOB 12-MAR-1961, seen 3/12/61; born 1961-03-12; 12MAR1961"
    ds.PatientComments = "DOB 03/12/1961"
    ds.StudyComments = f"{FAMILY} 12.03.1961"
    ds.AdditionalPatientHistory = f"Lives at {ADDRESS}, phone (555) 867-5309, {EMAIL}"


def unknown_public_tags(ds: Dataset) -> None:
    ds.add_new(0x00240FF1, "LO", FAMILY)  # even groups, not in the data dictionary
    ds.add_new(0x00250FF2, "UN", NAME.encode())
    ds.add_new(0x00431001, "UN", PATIENT_ID.encode())  # an odd group: private, no creator


def text_as_un(ds: Dataset) -> None:
    ds.add_new(0x00081030, "UN", f"{FAMILY} study ".encode())  # Study Description
    ds.add_new(0x00204000, "UN", f"{FAMILY.upper()} {PHONE} ".encode())  # Image Comments
    ds.add_new(0x00080081, "UN", ADDRESS.encode())  # Institution Address
    ds.add_new(0x00321032, "UN", f"{REFERRING} ".encode())  # Requesting Physician


def multi_valued_text(ds: Dataset) -> None:
    ds.add_new(0x00081048, "PN", [REFERRING, NAME])  # Physicians of Record
    ds.add_new(0x00081070, "PN", ["Hudson^Martha", NAME])  # Operators' Name
    ds.add_new(0x00400280, "ST", FAMILY)  # Comments on the Performed Procedure Step
    ds.add_new(0x00081040, "LO", "Reichenbach Radiology")  # Institutional Department Name
    ds.add_new(0x00321033, "LO", ["Reichenbach", "Radiology"])  # Requesting Service
    ds.StudyDescription = "CT CHEST W CONTRAST"
    ds.SeriesDescription = "AX T2 FLAIR"


def dates_and_times(ds: Dataset) -> None:
    ds.AcquisitionDateTime = BIRTH_DATE + "101010"
    ds.ContentTime = "101010"
    ds.add_new(0x00181202, "DA", BIRTH_DATE)  # Date of Last Calibration
    ds.add_new(0x00321000, "DA", BIRTH_DATE)  # Scheduled Study Start Date, retired
    ds.add_new(0x00404050, "DT", BIRTH_DATE + "101010")  # PPS Start DateTime


def names_in_free_text(ds: Dataset) -> None:
    ds.ImageComments = f"{NAME} referred by {REFERRING}; consult Dr. Irene Adler"
    ds.StudyDescription = "CT CHEST W CONTRAST"
    ds.SeriesDescription = "AX T2 FLAIR"
    ds.StudyComments = "Moved to 12 rue de Rivoli"


def uids_in_free_text(ds: Dataset) -> None:
    ds.ImageComments = f"Prior study {dicom_factory.STUDY_UID}, see it"
    ds.StudyDescription = f"{dicom_factory.SOP_UID} {dicom_factory.SERIES_UID}"  # LO


def reviewed_technical_text(ds: Dataset) -> None:
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = FAMILY
    ds.ConvolutionKernel = FAMILY.upper()
    ds.WindowCenterWidthExplanation = f"{FAMILY.upper()} LUNG"
    ds.add_new(0x00283003, "LO", PATIENT_ID)  # LUT Explanation
    ds.add_new(0x00080120, "UR", f"urn:example:{FAMILY}")  # URN Code Value


def kept_by_options(ds: Dataset) -> None:
    """What retain-device-identity and retain-patient-characteristics keep (tcia)."""
    ds.StationName = FAMILY.upper()
    ds.DeviceSerialNumber = f"SN-{PATIENT_ID}"
    ds.PatientSex = FAMILY.upper()
    ds.EthnicGroup = FAMILY


def _latin(charset: str) -> Callable[[Dataset], None]:
    def inject(ds: Dataset) -> None:
        ds.SpecificCharacterSet = charset
        ds.PatientName = UMLAUT_NAME
        ds.OperatorsName = UMLAUT_NAME
        ds.ImageComments = f"Befund für {UMLAUT_NAME}"
        ds.StudyDescription = "Müller"
        ds.add_new(0x00204000, "LT", f"Befund für {UMLAUT_NAME}, Jürgen Müller")
    inject.__name__ = f"non_ascii_{charset.replace(' ', '_').lower()}"
    return inject


CASES = [unlisted_public_text, retired_attributes, content_sequence, referenced_sequences,
         request_attributes, issuer_qualifiers, private_unknown_creator, private_known_creator,
         private_uid, binary_public_attributes, overlays, coded_values, dates_in_comments,
         unknown_public_tags, text_as_un, multi_valued_text, dates_and_times, names_in_free_text,
         uids_in_free_text, reviewed_technical_text, kept_by_options, _latin("ISO_IR 100"),
         _latin("ISO_IR 192")]
PROFILES = {"basic": ["basic"], "tcia": ["tcia"], "clean": ["basic", "clean-descriptors"]}


@pytest.fixture(scope="module")
def profiles():
    return {name: load_profiles(specs) for name, specs in PROFILES.items()}


def _instance(case: Callable[[Dataset], None]) -> bytes:
    ds = _patient()
    case(ds)
    return to_bytes(ds)


def _texts(ds: Dataset) -> Iterator[tuple[str, str]]:
    """(tag, text) of every element at every depth: decoded values, and bytes (UN, OB, a value
    pydicom cannot decode) in the encodings they may hold text in."""
    for element in ds.iterall():
        try:
            value = element.value
        except Exception:  # undecodable: its bytes as read
            value = ds.get_item(element.tag).value
        if element.VR == "SQ":
            continue
        if isinstance(value, bytes):
            for encoding in ("latin-1", "utf-8"):
                yield str(element.tag), value.decode(encoding, "ignore")
        else:
            yield str(element.tag), str(value)


def leaks(data: bytes) -> set[tuple[str, str]]:
    """(spelling, where) of every injected value in an output (it has no Pixel Data)."""
    ds = dcmread(io.BytesIO(data))
    assert "PixelData" not in ds
    found = set()
    for where, text in _texts(ds):
        folded = text.casefold()
        found |= {(s, where) for s in SPELLINGS if s.casefold() in folded}
        if UID_LEAK.search(text):
            found.add(("study UID", where))
    lowered = data.lower()
    for spelling in SPELLINGS:
        for encoding in ("latin-1", "utf-8"):
            if spelling.lower().encode(encoding) in lowered:
                found.add((spelling, f"bytes ({encoding})"))
    if UID_LEAK.search(data.decode("latin-1")):
        found.add(("study UID", "bytes"))
    return found


def _output(data: bytes, profile) -> bytes:
    result = deidentify_bytes(data, profile, KEY)
    assert isinstance(result, Output), result
    return result.data


@pytest.fixture(scope="module")
def outputs(profiles):
    return {(case.__name__, name): _output(_instance(case), profile)
            for case in CASES for name, profile in profiles.items()}


CASE_IDS = [case.__name__ for case in CASES]


@pytest.mark.parametrize("profile_name", PROFILES)
@pytest.mark.parametrize("case", CASE_IDS)
def test_no_injected_value_survives(outputs, case, profile_name):
    assert leaks(outputs[(case, profile_name)]) == set()


def test_the_search_finds_what_was_injected():
    """The leak search is not blind: every case's input shows its injected values."""
    for case in CASES:
        assert leaks(_instance(case)), case.__name__


def _sites(original: Dataset, output: Dataset, path: tuple = ()) -> Iterator[tuple]:
    """(path, tag) of each place of the original holding an injected value, as deep as the
    output keeps the same sequence items (a removed sequence is one place)."""
    for tag in original.keys():  # noqa: SIM118
        tag = Tag(tag)
        if tag.is_private and tag.element <= 0xFF:
            continue
        element = original[tag]
        if not any(text for _, text in _texts(_holder(element))
                   if any(s.casefold() in text.casefold() for s in SPELLINGS)):
            continue
        out = output.get(tag)
        if (element.VR == "SQ" and out is not None and out.VR == "SQ"
                and len(out.value) == len(element.value)):
            for index, (item, out_item) in enumerate(zip(element.value, out.value, strict=True)):
                yield from _sites(item, out_item, (*path, (tag, index)))
        else:
            yield path, tag


def _holder(element) -> Dataset:
    holder = Dataset()
    holder[element.tag] = element
    return holder


def _written_back(original: Dataset, output: Dataset, path: tuple, tag: Tag) -> bytes:
    """The output with the original element put back where it was (its private creator
    too)."""
    changed = copy.deepcopy(output)
    source, target = original, changed
    for sequence, index in path:
        source, target = source[sequence].value[index], target[sequence].value[index]
    target[tag] = copy.deepcopy(source[tag])
    if tag.is_private:
        creator = Tag(tag.group, tag.element >> 8)
        if creator in source:
            target[creator] = copy.deepcopy(source[creator])
    buffer = io.BytesIO()
    changed.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _findings(data: bytes, output: bytes, profile) -> set[tuple[str, str]]:
    return {(f.name, f.where) for f in verify_pair(data, output, profile).findings}


@pytest.mark.parametrize("profile_name", PROFILES)
@pytest.mark.parametrize("case", CASE_IDS)
def test_verify_finds_each_injected_value_written_back(profiles, outputs, case, profile_name):
    profile = profiles[profile_name]
    data, output = _instance(next(c for c in CASES if c.__name__ == case)), outputs[
        (case, profile_name)]
    assert _findings(data, output, profile) == set()  # the correct output passes
    original, written = dcmread(io.BytesIO(data)), dcmread(io.BytesIO(output))
    sites = list(_sites(original, written))
    assert sites
    missed = [(path, str(tag)) for path, tag in sites
              if not _findings(data, _written_back(original, written, path, tag), profile)]
    assert missed == []


@pytest.mark.parametrize("profile_name", ["clean", "tcia"])
def test_descriptors_survive_clean(outputs, profile_name):
    """The false-positive guard: descriptors survive cleaning next to injected identifiers."""
    for case in ("multi_valued_text", "names_in_free_text"):
        output = dcmread(io.BytesIO(outputs[(case, profile_name)]))
        assert output.StudyDescription == DESCRIPTORS["StudyDescription"]
        assert output.SeriesDescription == DESCRIPTORS["SeriesDescription"]
    comments = copy.deepcopy(_patient())
    comments.ImageComments = f"LYMPH NODE, {NAME}"
    # Carets in descriptors are common ('Abdomen^Liver'): a name in carets is found only as
    # the instance's own, not by its form.
    comments.StudyDescription = "Abdomen^Liver"
    profile = load_profiles(PROFILES[profile_name])
    cleaned = dcmread(io.BytesIO(_output(to_bytes(comments), profile)))
    assert cleaned.ImageComments == DESCRIPTORS["ImageComments"] + ","
    assert cleaned.StudyDescription == "Abdomen^Liver"


def test_reviewed_technical_text_keeps_its_values(profiles):
    """Technical text the unlisted policy keeps loses the patient's name and IDs, and only
    them: a vendor's values stay."""
    output = dcmread(io.BytesIO(_output(_instance(reviewed_technical_text), profiles["basic"])))
    assert output.Manufacturer == "SIEMENS"
    assert output.WindowCenterWidthExplanation == "LUNG"
    assert "ConvolutionKernel" not in output or not output.ConvolutionKernel


def test_a_uid_in_cleaned_text_becomes_the_instance_s_new_one(profiles):
    """A UID typed into text is replaced as the element holding it is, so the text still
    points at the de-identified study; where the replacement does not fit (LO: 64
    characters), it is removed."""
    output = dcmread(io.BytesIO(_output(_instance(uids_in_free_text), profiles["clean"])))
    assert output.ImageComments == f"Prior study {output.StudyInstanceUID}, see it"
    assert "StudyDescription" not in output or not output.StudyDescription.strip()

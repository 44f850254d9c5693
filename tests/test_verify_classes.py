"""Issue 12, item 9: `deid verify` finds each class of leak by its own means.

Each test takes a correct output (the engine's, under a profile that handles the class) and
writes the leak back as an engine whose handling of that class were switched off would write
it; verification must then fail, naming the tag and never the value."""

from __future__ import annotations

import io

import pytest
from dicom_factory import KEY, base_dataset, sequence_of, to_bytes
from pydicom import dcmread
from pydicom.dataset import Dataset

from deid.engine import Output, deidentify_bytes
from deid.engine.uids import hash_uid
from deid.profile import load_profiles
from deid.verify import verify_pair

# What the unlisted-attribute policy of item 4 decides, stated here so that these tests do not
# depend on how the built-in profiles spell it: unlisted text and dates removed, one technical
# attribute kept by a reviewed rule.
POLICY = """\
name: policy
extends: [basic]
unlisted: {LO: X, SH: X, ST: X, LT: X, UT: X, UC: X, UR: X, AE: X, DA: X, DT: X, TM: X, UN: X}
rules:
- {attribute: Manufacturer, action: K}
"""
# A profile with no unlisted policy at all: what it does not name, it does not allow.
BARE = "name: bare\nrules:\n- {attribute: PatientName, action: Z}\n"
CLEAN = "name: comments\nextends: [policy.yaml]\nrules:\n- {attribute: ImageComments, action: C}\n"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles")
    (folder / "policy.yaml").write_text(POLICY)
    (folder / "comments.yaml").write_text(CLEAN)
    (folder / "bare.yaml").write_text(BARE)
    return {"policy": load_profiles([str(folder / "policy.yaml")]),
            "clean": load_profiles([str(folder / "comments.yaml")]),
            "bare": load_profiles([str(folder / "bare.yaml")]),
            "pseudonym": load_profiles([str(folder / "policy.yaml"), "patient-pseudonym"])}


def _original() -> Dataset:
    ds = base_dataset()
    ds.PatientBirthDate = "19610407"
    ds.Manufacturer = "ACME"
    ds.ImageComments = "AX T2 FLAIR"
    return ds


def _correct(data: bytes, profile) -> Dataset:
    result = deidentify_bytes(data, profile, KEY)
    assert isinstance(result, Output), result
    return dcmread(io.BytesIO(result.data))


def _findings(data: bytes, output: Dataset, profile) -> set[str]:
    buffer = io.BytesIO()
    output.save_as(buffer, enforce_file_format=True)
    findings = verify_pair(data, buffer.getvalue(), profile).findings
    assert all("Jane" not in f.detail and "Doe" not in f.detail for f in findings)
    return {f.name for f in findings}


def _case(profiles, name: str, change_original=None):
    ds = _original()
    if change_original:
        change_original(ds)
    data = to_bytes(ds)
    output = _correct(data, profiles[name])
    assert _findings(data, output, profiles[name]) == set()  # the correct output passes
    return data, output


def test_unlisted_free_text(profiles):
    data, out = _case(profiles, "policy", lambda ds: setattr(
        ds, "DocumentTitle", "Report for Jane Doe"))
    out.DocumentTitle = "Report for Jane Doe"
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}
    # A profile with no policy for it allows it no more than one that removes it.
    assert "conformance/unallowed" in _findings(data, out, profiles["bare"])


def test_retired_text(profiles):
    data, out = _case(profiles, "policy", lambda ds: ds.add_new(0x00080010, "SH", "JDOE 4471"))
    out.add_new(0x00080010, "SH", "JDOE 4471")  # Recognition Code, retired
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}


def test_unknown_public_tag(profiles):
    unknown = 0x00240FF1  # an even group, not in the data dictionary
    data, out = _case(profiles, "policy", lambda ds: ds.add_new(unknown, "LO", "Jane Doe 4471"))
    out.add_new(0x00240FF1, "LO", "Jane Doe 4471")
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}
    assert "conformance/unallowed" in _findings(data, out, profiles["bare"])


def test_private_element(profiles):
    def add(ds):
        ds.add_new(0x00091010, "LO", "ACME 1.0")
        ds.add_new(0x00091001, "LO", "Doe^Jane 4471")
    data, out = _case(profiles, "policy", add)
    add(out)
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}


def test_overlay_text(profiles):
    def add(ds):
        ds.add_new(0x60000022, "LO", "Jane Doe scout")  # Overlay Description
        ds.add_new(0x60001500, "LO", "JDOE")  # Overlay Label
    data, out = _case(profiles, "policy", add)
    add(out)
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}
    assert "conformance/unallowed" in _findings(data, out, profiles["bare"])


def test_sequence_contents_under_a_removed_sequence(profiles):
    def add(ds):
        item = Dataset()
        item.ScheduledProcedureStepDescription = "MRI for Janet Roe-Smith"
        item.RequestedProcedureID = "RQ-88213"
        ds.RequestAttributesSequence = sequence_of(item)  # X under Basic, contents and all
    data, out = _case(profiles, "policy", add)
    # An engine that re-decides what a removed sequence held keeps the text next to it.
    out.Manufacturer = "ACME RQ-88213"
    assert _findings(data, out, profiles["policy"]) == {"leak/text"}
    out.Manufacturer = "ACME"
    add(out)
    assert _findings(data, out, profiles["policy"]) >= {"conformance/removed", "leak/text"}


def test_a_uid_minted_under_the_dicom_root_is_replaced(profiles):
    minted = "1.2.840.10008.999.4471.1"  # under the root, but not a UID the Standard defines
    data = to_bytes(_original())
    out = _correct(data, profiles["policy"])
    out.ReferencedImageSequence = sequence_of(Dataset())
    ref = out.ReferencedImageSequence[0]
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # a registered one: kept
    ref.ReferencedSOPInstanceUID = hash_uid(KEY, minted)
    source = _original()
    source.ReferencedImageSequence = sequence_of(Dataset())
    source.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    source.ReferencedImageSequence[0].ReferencedSOPInstanceUID = minted
    data = to_bytes(source)
    assert _findings(data, out, profiles["policy"]) == set()
    ref.ReferencedSOPInstanceUID = minted
    assert "conformance/uid_replaced" in _findings(data, out, profiles["policy"])


@pytest.mark.parametrize("variant", ["JDoe", "J. Doe", "DOE, JANE", "Jane Doe", "Doe J"])
def test_names_in_variants(profiles, variant):
    data, out = _case(profiles, "clean")
    out.ImageComments = f"AX T2 FLAIR {variant}"
    assert _findings(data, out, profiles["clean"]) == {"leak/text"}


@pytest.mark.parametrize("spelling", ["07-APR-1961", "4/7/61", "April 7, 1961", "1961-04-07",
                                      "07.04.1961"])
def test_dates_in_other_spellings(profiles, spelling):
    data, out = _case(profiles, "clean")
    out.ImageComments = f"AX T2 FLAIR DOB {spelling}"
    assert _findings(data, out, profiles["clean"]) == {"leak/text"}


@pytest.mark.parametrize("identifier", ["tel (617) 555-0199", "12 Elm Street",
                                        "jane.doe@example.org", "MRN: 4471023", "age 93"])
def test_identifiers_in_a_cleaned_comment(profiles, identifier):
    text = f"AX T2 FLAIR {identifier}"
    data, out = _case(profiles, "clean", lambda ds: setattr(ds, "ImageComments", text))
    assert out.ImageComments == "AX T2 FLAIR"  # the engine's detectors took it out
    out.ImageComments = text  # as an engine without them would write it
    assert _findings(data, out, profiles["clean"]) == {"leak/text"}


def test_patient_id_not_pseudonymised(profiles):
    data, out = _case(profiles, "pseudonym")
    assert out.PatientID.startswith("PAT-")
    out.PatientID = "PID-0001"
    assert _findings(data, out, profiles["pseudonym"]) >= {"conformance/replaced",
                                                           "leak/text"}

"""Issue 12, item 7: a keyed, consistent patient pseudonym, and a crosswalk row per patient."""

from __future__ import annotations

import re

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from dicom_factory import KEY, OTHER_KEY, base_dataset

from deid.beam.linkage import WriteLinkage
from deid.beam.records import Linkage
from deid.curator import tcia
from deid.engine import deidentify_dataset
from deid.profile import load_profiles

PSEUDONYM = re.compile(r"^PAT-[0-9A-F]{16}$")


def _result(patient_id: str, *names: str, key=KEY, sop: str = "1.2.826.0.1.3680043.8.498.9"):
    ds = base_dataset()
    ds.PatientID = patient_id
    ds.SOPInstanceUID = sop
    return deidentify_dataset(ds, load_profiles(list(names)), key)


def test_tcia_gives_each_patient_a_keyed_consistent_pseudonym():
    first = _result("PID-0001", "tcia").dataset.PatientID
    again = _result("PID-0001", "tcia", sop="1.2.826.0.1.3680043.8.498.10").dataset.PatientID
    other_patient = _result("PID-0002", "tcia").dataset.PatientID
    other_key = _result("PID-0001", "tcia", key=OTHER_KEY).dataset.PatientID
    assert PSEUDONYM.match(first) and first == again
    assert len({first, other_patient, other_key}) == 3


def test_the_option_gives_any_composition_the_pseudonym():
    pseudonymised = _result("PID-0001", "basic", "retain-uids", "patient-pseudonym")
    assert pseudonymised.dataset.PatientID == _result("PID-0001", "tcia").dataset.PatientID
    assert pseudonymised.patient_ids == ("PID-0001", pseudonymised.dataset.PatientID)


def test_an_emptied_patient_id_maps_to_the_empty_string():
    assert _result("PID-0001", "basic").patient_ids == ("PID-0001", "")
    assert _result("", "basic").patient_ids is None  # no original ID: nothing to link


def test_the_crosswalk_has_a_row_for_every_original_id(tmp_path):
    records = [Linkage((), ("PID-0001", "PAT-0123456789ABCDEF")), Linkage((), ("PID-0002", "")),
               Linkage((), ("PID-0002", ""))]
    with TestPipeline() as pipeline:
        _ = pipeline | beam.Create(records) | WriteLinkage(str(tmp_path))
    rows = (tmp_path / "patid_mapping.csv").read_text().splitlines()
    assert rows[0] == "id_old,id_new"
    assert sorted(rows[1:]) == ["PID-0001,PAT-0123456789ABCDEF", "PID-0002,"]


def test_committed_option_equals_the_generator_output():
    assert tcia.render_pseudonym(out=None) == tcia.PSEUDONYM_FILE.read_text(encoding="utf-8")

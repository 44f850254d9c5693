"""`deid explain --why`: for each element, the rule and its profile, the PS3.15 Table E.1-1
row and the column that decided, the IOD Type behind a compound code, the rules it replaced,
the unlisted policy, conditional rules that did not apply, and a date the shift emptied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dicom_factory import base_dataset, to_bytes

from deid.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _line_of(profile: str, needle: str) -> int:
    lines = (ROOT / "profiles" / f"{profile}.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    ds = base_dataset()
    ds.AcquisitionDate = "20240115"
    ds.ContentDate = "20240115"
    ds.StudyDate = "2024"  # not a date: a shift cannot read it
    ds.PatientAge = "045Y"
    ds.PatientSex = "F"
    ds.FrameLabel = "ARTERIAL"
    ds.add_new(0x00190010, "LO", "ACME 1.0")
    ds.add_new(0x00191001, "LO", "protocol v2")
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(ds))
    return path


def _why(capsys, instance: Path, *profiles: str) -> dict[str, list[str]]:
    args = [arg for p in profiles for arg in ("-p", p)]
    assert main(["explain", str(instance), *args, "--why", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    return {e["path"]: e["why"] for e in report["elements"]}


def test_the_rule_its_profile_and_the_table_row_and_column(instance, capsys):
    why = _why(capsys, instance, "basic")
    line = _line_of("basic", "{attribute: PatientName,")
    assert why["PatientName"] == [
        f"rule Z for PatientName at profiles/basic.yaml:{line}, profile basic",
        "PS3.15 Table E.1-1 row (0010,0010) Patient's Name: Basic Application Level "
        "Confidentiality Profile column Z"]


def test_a_compound_code_names_the_iod_the_type_and_the_module(instance, capsys):
    why = _why(capsys, instance, "basic")
    assert ("X/Z -> X: Type 3 in CT Image, module General Acquisition (may be absent)"
            in why["AcquisitionDate"])
    assert ("Z/D -> Z: Type 2 in CT Image, module General Image (must be present, may be "
            "empty)" in why["ContentDate"])


def test_the_rules_an_option_and_a_curator_rule_replaced(instance, tmp_path, capsys):
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\nextends: [basic, retain-patient-characteristics]\nrules:\n"
                    "- {attribute: PatientAge, action: remove}  # ages are not needed\n")
    why = _why(capsys, instance, str(mine))
    option = _line_of("retain-patient-characteristics", "{attribute: PatientAge,")
    basic = _line_of("basic", "{attribute: PatientAge,")
    assert why["PatientAge"] == [
        f"rule X for PatientAge at {mine}:4, profile mine (ages are not needed)",
        "PS3.15 Table E.1-1 row (0010,1010) Patient's Age (basic X, "
        "retain-patient-characteristics K); this rule is mine's own",
        f"it replaced K at profiles/retain-patient-characteristics.yaml:{option} (profile "
        "retain-patient-characteristics): later wins",
        f"it replaced X at profiles/basic.yaml:{basic} (profile basic): later wins"]
    assert ("PS3.15 Table E.1-1 row (0010,0040) Patient's Sex: Retain Patient Characteristics "
            "Option column K") in why["PatientSex"]


def test_why_an_unlisted_attribute_got_its_action(instance, capsys):
    why = _why(capsys, instance, "basic")
    assert why["FrameLabel"][0].startswith(
        "an attribute of VR LO that no rule names and PS3.15 Table E.1-1 does not list: the "
        "unlisted policy of profile basic decides it, X/Z/D at profiles/basic.yaml:")
    assert why["SOPClassUID"][-1] == ("a UID the Standard defines (PS3.6 Annex A): kept, as U "
                                      "keeps them")
    manufacturer = _line_of("basic", "{attribute: Manufacturer,")
    base = base_dataset()
    base.Manufacturer = "ACME"
    instance.write_bytes(to_bytes(base))
    assert _why(capsys, instance, "basic")["Manufacturer"][0].startswith(
        f"rule K for Manufacturer at profiles/basic.yaml:{manufacturer}, profile basic "
        "(reviewed: ")


def test_a_when_rule_that_did_not_apply_says_why(instance, tmp_path, capsys):
    mine = tmp_path / "when.yaml"
    mine.write_text("name: when\nextends: [basic]\nrules:\n"
                    "- {attribute: PatientSex, when: {Modality: MR}, action: keep}\n"
                    "- {attribute: PatientAge, when: {PatientID: OTHER}, action: keep}\n")
    why = _why(capsys, instance, str(mine))
    assert why["PatientSex"][0] == f"rule K at {mine}:4 did not apply: Modality is CT"
    assert why["PatientAge"][0] == (f"rule K at {mine}:5 did not apply: PatientID has another "
                                    "value (masked)")
    assert "PID-0001" not in json.dumps(why)


def test_private_elements_and_their_creator(instance, tmp_path, capsys):
    mine = tmp_path / "acme.yaml"
    mine.write_text("name: acme\nextends: [basic]\nrules:\n"
                    "- {private: {creator: ACME 1.0}, action: keep}\n")
    why = _why(capsys, instance, str(mine))
    assert why["(0019,1001)"] == [
        f"rule K for ACME 1.0 (every element) at {mine}:4, profile acme"]
    assert why["(0019,0010)"] == ["private creator: kept while an element of its block is"]


def test_a_date_the_shift_empties_says_why(instance, tmp_path, capsys):
    why = _why(capsys, instance, "basic", "retain-long-modified-dates")
    assert why["StudyDate"][-1] == ("the value is not a DA value a shift can read: emptied "
                                    "(fail closed)")


def test_the_table_shows_the_reasons_under_each_element(instance, capsys):
    assert main(["explain", str(instance), "-p", "basic", "--why", "-a", "ContentDate",
                 "-a", "00100010"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TAG"))
    assert [line.split()[1] for line in lines[start + 1:] if line.startswith("(")] == [
        "ContentDate", "PatientName"]
    assert lines[start + 2].startswith("    why: rule Z/D for ContentDate at ")


@pytest.mark.parametrize(("animal", "outcome"), [(True, "X/Z/D -> Z"), (False, "X/Z/D -> X")])
def test_a_conditional_type_says_whether_its_condition_holds(animal: bool, outcome: str,
                                                            tmp_path, capsys):
    ds = base_dataset()
    ds.ResponsiblePerson = "Doe^John"
    if animal:
        ds.PatientSpeciesDescription = "Canine species"
    path = tmp_path / "patient.dcm"
    path.write_bytes(to_bytes(ds))
    held = "it holds" if animal else "it does not hold"
    assert _why(capsys, path, "basic")["ResponsiblePerson"][-1] == (
        f"{outcome}: Type 2C in CT Image, module Patient (must be present, may be empty if the "
        f"patient is an animal: {held})")


def test_an_unknown_sop_class_keeps_the_tables_x(tmp_path, capsys):
    ds = base_dataset("1.2.826.0.1.3680043.8.498.999")
    ds.PresentationCreationDate = "20240115"
    path = tmp_path / "unknown.dcm"
    path.write_bytes(to_bytes(ds))
    assert _why(capsys, path, "basic")["PresentationCreationDate"][-1] == (
        "X/Z/D -> X: the SOP Class has no IOD the tables know; the table says X, so removed")


def test_json_always_has_the_reasons(instance, capsys):
    assert main(["explain", str(instance), "-p", "basic", "--json"]) == 0
    elements = {e["path"]: e for e in json.loads(capsys.readouterr().out)["elements"]}
    assert elements["PatientName"]["why"][1].startswith("PS3.15 Table E.1-1 row (0010,0010)")

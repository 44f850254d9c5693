"""Profiles: generated from the standard, validated with file and line, composed in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.profile import ProfileError, builtin_names, load_profiles
from deid.standard import generate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "standard"
OPTIONS = ["retain-safe-private", "retain-uids", "retain-device-identity",
           "retain-institution-identity", "retain-patient-characteristics",
           "retain-long-full-dates", "retain-long-modified-dates", "clean-descriptors",
           "clean-structured-content", "clean-graphics", "clean-pixel-data"]


def test_builtin_profiles_are_basic_and_every_option():
    assert {"basic", *OPTIONS} <= set(builtin_names())


def test_committed_profiles_equal_the_generator_output(tmp_path):
    texts = generate.render(out=tmp_path)
    for name, text in texts.items():
        assert (ROOT / "profiles" / name).read_text(encoding="utf-8") == text, name


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/standard is not beside the checkout")
def test_committed_standard_data_equals_the_extraction(tmp_path):
    generate.extract(SHARED, tmp_path)
    for path in tmp_path.iterdir():
        committed = ROOT / "deid" / "standard" / "data" / path.name
        assert committed.read_bytes() == path.read_bytes(), path.name


def test_every_profile_records_its_edition():
    for name in builtin_names():
        profile = load_profiles([name])
        assert "2026c" in profile.editions, name


@pytest.mark.parametrize("name", OPTIONS)
def test_options_compose_on_basic_without_repeating_it(name):
    profile = load_profiles(["basic", "retain-uids", name])
    assert profile.names.count("basic") == 1
    assert profile.names[0] == "basic"


def test_later_profile_wins():
    assert load_profiles(["basic"]).by_tag[0x0020000D][0].action == "U"
    assert load_profiles(["basic", "retain-uids"]).by_tag[0x0020000D][0].action == "K"
    # retain-uids extends basic: basic comes first and is not applied a second time.
    assert load_profiles(["retain-uids", "basic"]).by_tag[0x0020000D][0].action == "K"


def test_a_curator_profile_overrides_what_it_extends(tmp_path):
    (tmp_path / "p.yaml").write_text("name: mine\nextends: [basic, retain-uids]\nrules:\n"
                                     "  - {attribute: StudyInstanceUID, action: U}\n")
    profile = load_profiles([str(tmp_path / "p.yaml")])
    assert profile.names == ("basic", "retain-uids", "mine")
    assert profile.by_tag[0x0020000D][0].action == "U"
    assert profile.by_tag[0x0020000D][0].source.line == 4


def _problems(tmp_path: Path, text: str, name: str = "p.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profiles([str(path)])
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_with_file_and_line(tmp_path):
    problems = _problems(tmp_path, """\
name: mine
extends: [basic]
rules:
  - {attribute: PatientNmae, action: X}
  - {attribute: '(0010,001G)', action: X}
  - {attribute: PatientName, action: scramble}
  - {attribute: PatientName, action: U}
  - {attribute: StudyDate, action: replace, value: 'not-a-date'}
""")
    path = tmp_path / "p.yaml"
    assert problems[0].startswith(f"{path}:4:17: unknown keyword 'PatientNmae'")
    assert "did you mean 'PatientName'" in problems[0]
    assert problems[1].startswith(f"{path}:5:17: unknown keyword")
    assert problems[2].startswith(f"{path}:6:38: unknown action 'scramble'")
    assert problems[3].startswith(f"{path}:7:38: action U cannot apply to PatientName")
    assert problems[4].startswith(f"{path}:8:52: value is not valid for VR DA")
    assert len(problems) == 5


def test_yaml_is_loaded_safely(tmp_path):
    problems = _problems(tmp_path, "name: x\nrules: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in problems[0]


def test_duplicate_keys_and_unknown_keys_are_errors(tmp_path):
    problems = _problems(tmp_path, "name: x\nname: y\n")
    assert "duplicate key 'name'" in problems[0]
    problems = _problems(tmp_path, "name: x\nrulez: []\n")
    assert "unknown profile key 'rulez'" in problems[0] and "did you mean 'rules'" in problems[0]


def test_private_tags_need_a_creator(tmp_path):
    problems = _problems(tmp_path, "name: x\nrules:\n  - {attribute: '(0019,1023)', action: K}\n")
    assert "private tag" in problems[0] and "creator" in problems[0]


def test_missing_profile_and_cycles(tmp_path):
    with pytest.raises(ProfileError, match="no such profile"):
        load_profiles(["basik"])
    (tmp_path / "a.yaml").write_text("name: a\nextends: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: [a.yaml]\n")
    with pytest.raises(ProfileError, match="cycle"):
        load_profiles([str(tmp_path / "a.yaml")])


def test_full_and_modified_dates_exclude_each_other():
    with pytest.raises(ProfileError, match="mutually exclusive"):
        load_profiles(["retain-long-full-dates", "retain-long-modified-dates"])


def test_lookup_file_is_read_relative_to_the_profile(tmp_path):
    (tmp_path / "ids.csv").write_text("original,code\nPID-0001,SUBJ-01\n")
    (tmp_path / "p.yaml").write_text(
        "name: x\nextends: [basic]\nrules:\n"
        "  - {attribute: PatientID, action: lookup, file: ids.csv}\n")
    profile = load_profiles([str(tmp_path / "p.yaml")])
    assert profile.by_tag[0x00100020][0].lookup.table == {"PID-0001": "SUBJ-01"}
    problems = _problems(tmp_path, "name: x\nrules:\n"
                         "  - {attribute: PatientID, action: lookup, file: nope.csv}\n", "q.yaml")
    assert "cannot read lookup file 'nope.csv'" in problems[0]

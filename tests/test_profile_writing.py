"""Writing profiles as curators type them: tags in every spelling, one message for an
unquoted tag, private rules by creator or block, date_shift and lookup tables whose mistakes
each get their own message naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_factory import base_dataset

from deid.curator.lint import lint
from deid.engine import deidentify_dataset
from deid.keys import SecretKey
from deid.profile import ProfileError, load_profiles

KEY = SecretKey(b"k" * 32, "test")


def _profile(tmp_path: Path, body: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text(f"name: {Path(name).stem}\nextends: [basic]\n{body}")
    return str(path)


def _problems(tmp_path: Path, body: str) -> list[str]:
    return [f"{f.line}:{f.column} {f.kind} {f.message} | {f.fix}"
            for f in lint([_profile(tmp_path, body)])]


@pytest.mark.parametrize("spelling", ["'(0010,0010)'", "'0010,0010'", "'00100010'",
                                      "'(0010, 0010)'", "'( 0010,0010 )'", "PatientName"])
def test_a_tag_in_every_spelling_names_the_same_attribute(spelling, tmp_path):
    profile = load_profiles([_profile(tmp_path, f"rules:\n- {{attribute: {spelling}, "
                                                "action: remove}\n")])
    (rule,) = profile.by_tag[0x00100010]
    assert rule.action == "X" and rule.source.line == 4


def test_repeating_group_spellings(tmp_path):
    profile = load_profiles([_profile(tmp_path, "rules:\n- {attribute: '60XX3000', "
                                                "action: keep}\n")])
    assert profile.rules_for_tag(0x60023000)[0].action == "K"


@pytest.mark.parametrize("written, number", [("(0010,0010)", None), ("00100010", 32776)])
def test_an_unquoted_tag_gets_one_message_saying_to_quote_it(written, number, tmp_path):
    problems = _problems(tmp_path, f"rules:\n- {{attribute: {written}, action: remove}}\n")
    assert len(problems) == 1, problems
    assert f"the tag {written} must be quoted" in problems[0]
    assert f"write '{written}' (with the quotes)" in problems[0]
    if number is not None:
        assert f"the number {number}" in problems[0]


def test_an_unquoted_private_tag_too(tmp_path):
    problems = _problems(tmp_path, "rules:\n- {private: {creator: ACME, tag: 00111001}, "
                                   "action: keep}\n")
    assert len(problems) == 1 and "the tag 00111001 must be quoted" in problems[0]


def _with_private() -> object:
    ds = base_dataset()
    ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
    ds.add_new(0x00191002, "SL", 7)
    ds.add_new(0x00191042, "LO", "HELICAL")  # no word of the patient's name: kept private
    # text that holds one is removed whatever the rule (E.3.10)
    ds.add_new(0x00210010, "LO", "GEMS_ACQU_01")
    ds.add_new(0x00211005, "LO", "other group")
    ds.add_new(0x00190011, "LO", "OTHER")
    ds.add_new(0x00191101, "LO", "not this creator")
    return ds


@pytest.mark.parametrize("selector, kept", [
    ("{creator: GEMS_ACQU_01}", {0x00191002, 0x00191042, 0x00211005}),
    ("{creator: GEMS_ACQU_01, tag: '(0019,xxxx)'}", {0x00191002, 0x00191042}),
    ("{creator: GEMS_ACQU_01, tag: '(0019,xx02)'}", {0x00191002}),
    ("{creator: GEMS_ACQU_01, tag: '(0019,1002)'}", {0x00191002}),  # as copied from a dump
    ("{creator: GEMS_ACQU_01, tag: '0019,xx02'}", {0x00191002}),
])
def test_private_rules_by_creator_block_or_element(selector, kept, tmp_path):
    profile = load_profiles([_profile(tmp_path, f"rules:\n- {{private: {selector}, "
                                                "action: keep}\n")])
    out = deidentify_dataset(_with_private(), profile, KEY).dataset
    private = {int(e.tag) for e in out if e.tag.is_private and e.tag.element >= 0x1000}
    assert private == kept


def test_the_most_specific_private_rule_applies(tmp_path):
    profile = load_profiles([_profile(tmp_path, (
        "rules:\n- {private: {creator: GEMS_ACQU_01, tag: '(0019,xx42)'}, action: remove}\n"
        "- {private: {creator: GEMS_ACQU_01}, action: keep}\n"))])
    out = deidentify_dataset(_with_private(), profile, KEY).dataset
    assert 0x00191042 not in out and 0x00191002 in out and 0x00211005 in out


@pytest.mark.parametrize("tag", ["'(0018,xx02)'", "'(0019,0002)'", "'(0019,xx)'"])
def test_a_bad_private_tag_is_an_error(tag, tmp_path):
    problems = _problems(tmp_path, f"rules:\n- {{private: {{creator: ACME, tag: {tag}}}, "
                                   "action: keep}\n")
    assert len(problems) == 1 and "bad private tag" in problems[0]


def test_lint_warns_on_an_action_that_cannot_suit_a_private_element(tmp_path):
    problems = _problems(tmp_path, (
        "rules:\n"
        "- {private: {creator: ACME, tag: '(0011,xx01)'}, vr: LO, action: uid}\n"
        "- {private: {creator: GEMS_PARM_01, tag: '(0043,xx39)'}, action: shift}\n"
        "- {private: {creator: ACME, tag: '(0011,xx02)'}, vr: LO, action: keep}\n"))
    assert problems == [
        "4:3 vr action U cannot suit ACME (0011,xx01): its VR is LO (its 'vr'), so the engine "
        "removes the element instead (fail closed) | choose an action its VR (LO) takes: keep, "
        "remove, empty or dummy; or check the creator and the tag",
        "5:3 vr action shift cannot suit GEMS_PARM_01 (0043,xx39): its VR is IS (pydicom's "
        "private dictionary), so the engine removes the element instead (fail closed) | "
        "choose an action its VR (IS) takes: keep, remove, empty or dummy; or check the "
        "creator and the tag"]


@pytest.mark.parametrize("setting, expected", [
    ("{min: -10, max: -1}", ["unknown date_shift key 'min' | did you mean 'min_days'?",
                             "unknown date_shift key 'max' | did you mean 'max_days'?"]),
    ("{min_days: '-30 days', max_days: -1}",
     ["min_days is '-30 days': write the number of days alone, without units or quotes | "
      "write min_days: -30"]),
    ("-30", ["'date_shift' is a range of days, {min_days: N, max_days: M}, not a single value "
             "| for a fixed shift of -30 days write 'date_shift: {min_days: -30, max_days: "
             "-30}'"]),
    ("{min_days: -30.5, max_days: -1}",
     ["min_days is -30.5: a shift is a whole number of days | write min_days: -30"]),
    ("{min_days: -5, max_days: -10}", ["min_days (-5) is more than max_days (-10) | swap them"]),
    ("{min_days: -400000, max_days: -1}",
     ["min_days -400000 moves dates out of the years 1000 to 9999 a DICOM date can be written "
      "in, so they would be emptied | keep min_days at or above -328718 days (a few years are "
      "enough to hide a date)"]),
    ("{min_days: 1, max_days: 3000000}",
     ["max_days 3000000 moves dates out of the years 1000 to 9999"]),
])
def test_each_date_shift_mistake_has_its_own_message(setting, expected, tmp_path):
    problems = _problems(tmp_path, f"date_shift: {setting}\n")
    assert len(problems) == len(expected), problems
    for problem, wanted in zip(problems, expected, strict=True):
        assert wanted in problem


@pytest.mark.parametrize("table, rule, expected", [
    ("original;code\nPID-1;S-1\n", "", "line 1 separates its columns with ';', not commas"),
    ("original\tcode\nPID-1\tS-1\n", "", "line 1 separates its columns with '\\t'"),
    ("PID-1,S-1\nPID-2,S-2\n", ", from_column: patient_id",
     "line 1 (the header) has no column 'patient_id'"),
    ("original,code\nPID-1,S-1\nPID-2,S-2\nPID-1,S-3\n", "",
     "line 4 repeats the original value of line 2"),
    ("original,code\nPID-1,S-1\nPID-2\n", "", "line 3 has 1 column, the header 2"),
    ("", "", "is empty"),
])
def test_lookup_file_mistakes_name_the_line(table, rule, expected, tmp_path):
    (tmp_path / "ids.csv").write_text(table)
    problems = _problems(tmp_path, "rules:\n- {attribute: PatientID, action: lookup, "
                                   f"file: ids.csv{rule}}}\n")
    assert len(problems) == 1 and expected in problems[0], problems
    assert "PID-" not in problems[0]  # never a value of the table


def test_lookup_columns_are_chosen_by_name(tmp_path):
    (tmp_path / "ids.csv").write_text("site,mrn,subject\nA,PID-1,S-1\n")
    profile = load_profiles([_profile(tmp_path, (
        "rules:\n- {attribute: PatientID, action: lookup, file: ids.csv, from_column: mrn, "
        "to_column: subject}\n"))])
    assert profile.by_tag[0x00100020][0].lookup.table == {"PID-1": "S-1"}


def test_a_profile_error_names_the_line_only_once(tmp_path):
    with pytest.raises(ProfileError) as error:
        load_profiles([_profile(tmp_path, "rules:\n- {attribute: (0010,0010), action: X}\n")])
    assert len(error.value.problems) == 1


def _with_table(tmp_path: Path, rules: str):
    """The profile of these rules, beside ids.csv, which maps PID-0001 only."""
    (tmp_path / "ids.csv").write_text("original,code\nPID-0001,SUBJ-01\n")
    return load_profiles([_profile(tmp_path, f"rules:\n{rules}")])


def test_a_lookup_missing_rejection_counts_the_distinct_missing_values(tmp_path):
    from dicom_factory import to_bytes

    from deid.engine import Rejection, deidentify_bytes

    profile = _with_table(tmp_path, (
        "- {attribute: PatientID, action: lookup, file: ids.csv}\n"
        "- {attribute: PatientName, action: lookup, file: ids.csv, key: PatientID}\n"
        "- {attribute: OtherPatientIDs, action: lookup, file: ids.csv}\n"))
    ds = base_dataset()
    ds.PatientID = "PID-0002"
    ds.OtherPatientIDs = "MRN-77"
    result = deidentify_bytes(to_bytes(ds), profile.with_sealed_lookups(KEY), KEY)
    assert isinstance(result, Rejection) and result.reason == "lookup_missing"
    # PatientID and PatientName look up the same value: two distinct values, three rules.
    assert result.message.startswith("2 distinct values have no entry in lookup file ids.csv: ")
    assert "PatientID (0010,0020) (rule at " in result.message
    assert "PatientName (0010,0010)" in result.message
    assert "OtherPatientIDs (0010,1000)" in result.message
    assert "PID-0002" not in result.message and "MRN-77" not in result.message
    ds.OtherPatientIDs = "PID-0001"
    result = deidentify_bytes(to_bytes(ds), profile, KEY)
    assert result.message.startswith("1 distinct value has no entry in lookup file ids.csv")


@pytest.mark.parametrize("tag", ["'(0019,xx02)'", "'(0019,1002)'", "'00191002'"])
def test_a_private_tag_as_an_attribute_asks_for_its_creator(tag, tmp_path):
    problems = _problems(tmp_path, f"rules:\n- {{attribute: {tag}, action: keep}}\n")
    assert len(problems) == 1, problems
    assert "is a private tag: it needs its private creator" in problems[0]
    assert "private: {creator: NAME, tag: '(0019,xx02)'}" in problems[0]


def test_conditions_and_lookup_keys_take_tags_too(tmp_path):
    profile = _with_table(tmp_path, (
        "- {attribute: PatientAge, when: {'(0008,0060)': CT}, action: keep}\n"
        "- {attribute: ReferencedSOPInstanceUID, within: '00082112', action: keep}\n"
        "- {attribute: PatientName, action: lookup, file: ids.csv, key: '0010,0020'}\n"))
    assert profile.by_tag[0x00101010][0].when == ((0x00080060, frozenset({"CT"})),)
    assert profile.by_tag[0x00081155][0].within == "SourceImageSequence"
    assert profile.by_tag[0x00100010][0].lookup.key_tag == 0x00100020

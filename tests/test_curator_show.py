"""`deid profile list` and `deid profile show`: built-in profiles, and resolved rule tables that
say which file and line decided each element."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deid.cli import main
from deid.profile import builtin_names

ROOT = Path(__file__).resolve().parents[1]


def _line_of(profile: str, needle: str) -> int:
    """The line of a built-in profile where a text first appears."""
    lines = (ROOT / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_list_shows_every_builtin_with_edition_and_description(capsys):
    assert main(["profile", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "EDITION", "SECTION", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(builtin_names())
    assert rows["basic"].split()[1:3] == ["2026c", "E.2"]
    assert "Keeps all UIDs unchanged" in rows["retain-uids"]
    # tcia has no section of its own; its edition is that of what it extends.
    assert rows["tcia"].split()[1:3] == ["2026c", "-"]
    # Aligned: every description starts in the same column.
    column = lines[0].index("DESCRIPTION")
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines[1:])


def test_list_json(capsys):
    assert main(["profile", "list", "--json"]) == 0
    profiles = {p["name"]: p for p in json.loads(capsys.readouterr().out)["profiles"]}
    assert profiles["retain-uids"]["extends"] == ["basic"]
    assert profiles["retain-uids"]["section"] == "E.3.9"
    assert profiles["tcia"]["edition"] == "2026c"


def test_show_gives_tag_action_and_the_line_that_decided(capsys):
    assert main(["profile", "show", "basic", "retain-uids", "-a", "PatientName",
                 "-a", "StudyInstanceUID", "-a", "(60xx,3000)", "-a", "UI"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile: basic + retain-uids (PS3.15 2026c)\n")
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("(", "*"))}
    name_line = _line_of("basic", "{attribute: PatientName,")
    assert rows["(0010,0010)"] == ["(0010,0010)", "PatientName", "Z",
                                   f"profiles/basic.yaml:{name_line}"]
    uid_line = _line_of("retain-uids", "{attribute: StudyInstanceUID,")
    assert rows["(0020,000D)"][-1] == f"profiles/retain-uids.yaml:{uid_line}"  # later wins
    assert rows["(60xx,3000)"][1:3] == ["OverlayData", "X"]
    assert rows["*"][:5] == ["*", "any", "unlisted", "UI", "K"]


def test_show_lists_conditional_candidates_in_the_order_tried(tmp_path, capsys):
    profile = tmp_path / "site.yaml"
    profile.write_text(
        "name: site\nextends: [basic]\nrules:\n"
        "- {attribute: PatientAge, when: {Modality: [MR, CT]}, action: K}\n"
        "- {attribute: ImageComments, within: ReferencedImageSequence, action: K}\n"
        "- {attribute: SeriesDescription, action: clean, allow: ['AX T1'],"
        " allow_patterns: ['^T2']}\n")
    assert main(["profile", "show", str(profile), "-a", "PatientAge",
                 "-a", "ImageComments", "-a", "SeriesDescription"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("(")]
    body = [line for line in lines if "PatientAge" in line]
    assert "when Modality in CT, MR" in body[0] and f"{profile}:4" in body[0]
    assert "otherwise" in body[1] and "profiles/basic.yaml:" in body[1]
    comments = [line for line in lines if "ImageComments" in line]
    assert "within ReferencedImageSequence" in comments[0]
    (series,) = [line for line in lines if "SeriesDescription" in line]
    assert "C allow 1 value + 1 pattern" in series


def test_show_json_and_private_rules(capsys):
    assert main(["profile", "show", "retain-safe-private", "--json",
                 "-a", "GEMS_ACQU_01"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profiles"] == ["basic", "retain-safe-private"]
    assert report["private"] == "remove"
    rule = next(r for r in report["rules"] if r["tag"] == "(0019,xx23)")
    assert rule["element"] == "private GEMS_ACQU_01" and rule["action"] == "K"
    assert rule["source"]["file"] == "profiles/retain-safe-private.yaml"
    assert rule["source"]["line"] == _line_of("retain-safe-private",
                                              "creator: GEMS_ACQU_01, tag: '(0019,xx23)'")


def test_show_profile_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrules:\n- {attribute: PatientNmae, action: X}\n")
    assert main(["profile", "show", str(bad)]) == 2
    assert f"{bad}:3:15: unknown keyword 'PatientNmae'" in capsys.readouterr().err


def test_curator_commands_do_not_import_beam():
    from pydicom.data import get_testdata_file

    ct = get_testdata_file("CT_small.dcm")
    code = ("import sys\nfrom deid.cli import main\n"
            "assert main(['profile', 'list']) == 0\n"
            "assert main(['profile', 'show', 'basic', '-a', 'PatientName']) == 0\n"
            "assert main(['profile', 'lint', 'retain-uids']) == 0\n"
            f"assert main(['explain', {ct!r}, '-p', 'basic', '--why']) == 0\n"
            f"assert main(['diff', {ct!r}, {ct!r}]) == 0\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'pipelines')]\n"
            "assert not heavy, heavy\n")
    env = {k: v for k, v in os.environ.items() if k != "DEID_SECRET"}
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT,
                   env=env)


def _shown(capsys) -> dict[str, list[str]]:
    out = capsys.readouterr().out
    return {line.split("  ")[0] + " " + line.split()[1]: line.split()
            for line in out.splitlines() if line.startswith(("(", "*"))}


@pytest.mark.parametrize("spelling", ["PatientName", "patientname", "(0010,0010)",
                                      "0010,0010", "00100010", "(0010, 0010)"])
def test_show_a_accepts_keywords_in_any_case_and_tags_in_any_spelling(spelling, capsys):
    assert main(["profile", "show", "basic", "-a", spelling]) == 0
    assert list(_shown(capsys)) == ["(0010,0010) PatientName"]


def test_show_a_finds_the_repeating_group_rule_of_a_concrete_tag(capsys):
    assert main(["profile", "show", "basic", "-a", "(6000,3000)", "-a", "(6002,4000)"]) == 0
    assert list(_shown(capsys)) == ["(60xx,3000) OverlayData", "(60xx,4000) OverlayComments"]


def test_show_a_shows_the_unlisted_rule_that_decides_an_attribute_no_rule_names(capsys):
    assert main(["profile", "show", "basic", "-a", "FrameLabel"]) == 0
    (row,) = _shown(capsys).values()
    assert row[:5] == ["*", "any", "unlisted", "LO", "X/Z/D"]


def test_show_a_suggests_a_keyword_or_creator_for_a_typo(capsys):
    assert main(["profile", "show", "retain-safe-private", "-a", "PatientsName",
                 "-a", "GEMS_ACQ_01"]) == 2
    err = capsys.readouterr().err
    assert "'PatientsName' is not a keyword, a tag, a private creator or a VR: did you mean " \
           "'PatientName'?" in err
    assert "did you mean 'GEMS_ACQU_01'?" in err
    assert main(["profile", "show", "retain-safe-private", "-a", "gems_acqu_01"]) == 0
    rows = _shown(capsys).values()
    assert rows and all(row[1:3] == ["private", "GEMS_ACQU_01"] for row in rows)


def test_show_a_finds_private_rules_by_a_tag_as_a_dump_shows_it(capsys):
    assert main(["profile", "show", "retain-safe-private", "-a", "(0019,1023)",
                 "-a", "(0043,xx39)"]) == 0
    rows = [row[:3] for row in _shown(capsys).values()]
    assert rows == [["(0019,xx23)", "private", "GEMS_ACQU_01"],
                    ["(0043,xx39)", "private", "GEMS_PARM_01"]]

"""`deid profile lint`: one fixture profile per mistake, each stating in its header what lint
must find (``# expect: LINE:COLUMN KIND text``), so a fixture documents its own mistake."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deid.cli import main
from deid.curator.lint import lint
from deid.profile import builtin_names

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "profiles"
EXPECT = re.compile(r"^# expect(?: in| -in|-in)?(?: (?P<other>\S+))?: (?P<line>\d+):(?P<col>\d+) "
                    r"(?P<kind>\w+) (?P<text>.+)$")


def _header(path: Path) -> tuple[list[Path], list[tuple], dict[str, int]]:
    """(the composition to lint, expected findings (file name, line, column, kind, text),
    expected counts by kind) from a fixture's comment header."""
    specs, expected, counts = [path], [], {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# lint:"):
            specs = [FIXTURES / name for name in line.split(":", 1)[1].split()]
        elif line.startswith("# expect-count:"):
            kind, count = line.split(":", 1)[1].split()
            counts[kind] = int(count)
        elif line.startswith("# expect"):
            match = EXPECT.match(line)
            assert match, f"bad expectation in {path.name}: {line}"
            name = (match["other"] or path.name).rstrip(":")
            expected.append((name, int(match["line"]), int(match["col"]), match["kind"],
                             match["text"]))
    return specs, expected, counts


FIXTURE_FILES = sorted(FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_each_fixture_gets_exactly_the_findings_its_header_states(path):
    specs, expected, counts = _header(path)
    findings = lint([str(s) for s in specs])
    for name, line, column, kind, text in expected:
        matching = [f for f in findings
                    if (Path(f.file).name, f.line, f.column, f.kind) == (name, line, column, kind)
                    and text in f"{f.message} (fix: {f.fix})"]
        assert matching, (f"{path.name}: no {kind} at {name}:{line}:{column} with {text!r}; "
                          f"got {[str(f) for f in findings]}")
    for kind, count in counts.items():
        assert sum(f.kind == kind for f in findings) == count, [str(f) for f in findings]
    if not expected and not counts:
        assert findings == [], [str(f) for f in findings]
    # Every finding says how to fix it.
    assert all(f.fix for f in findings), [str(f) for f in findings if not f.fix]


def test_every_mistake_kind_has_a_fixture():
    kinds = set()
    for path in FIXTURE_FILES:
        _, expected, counts = _header(path)
        kinds |= {e[3] for e in expected} | set(counts)
    # ocr and pixels depend on what is installed: tests/test_pixel_rules.py covers them.
    assert kinds == {"error", "shadowed", "disagree", "condition", "lookup", "template",
                     "region"}


@pytest.mark.parametrize("name", [n for n in builtin_names() if n != "tcia"])
def test_builtin_profiles_are_clean_on_their_own(name):
    # Options override basic on purpose: that is never reported.
    assert lint([name]) == []


def test_a_profile_overriding_what_it_extends_is_not_reported():
    assert lint([str(FIXTURES / "site-child.yaml")]) == []
    assert lint([str(FIXTURES / "site-a.yaml"), str(FIXTURES / "site-child.yaml")]) == []


def test_exclusive_options_are_reported_with_their_line(tmp_path):
    path = tmp_path / "both-dates.yaml"
    path.write_text("name: both-dates\n"
                    "extends: [basic, retain-long-full-dates, retain-long-modified-dates]\n")
    (finding,) = [f for f in lint([str(path)]) if f.kind == "error"]
    assert "mutually exclusive" in finding.message
    assert finding.file.endswith("retain-long-modified-dates.yaml")


# --- the command ------------------------------------------------------------------------------

def test_command_exit_codes_and_table(capsys):
    assert main(["profile", "lint", str(FIXTURES / "clean.yaml")]) == 0
    assert "no problems" in capsys.readouterr().out
    assert main(["profile", "lint", str(FIXTURES / "shadowed.yaml")]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["LOCATION", "KIND", "PROBLEM"]
    assert lines[1].startswith(f"{FIXTURES / 'shadowed.yaml'}:6:3  shadowed  the rule for "
                               "StudyDescription never applies")
    assert lines[2].strip().startswith("fix: ")
    assert lines[2].index("fix:") == lines[1].index("the rule")  # aligned under PROBLEM
    assert "1 problem in" in out


def test_command_usage_errors_exit_2(capsys, tmp_path):
    assert main(["profile", "lint", str(tmp_path / "missing.yaml")]) == 2
    assert f"no such file: {tmp_path / 'missing.yaml'}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "lint"])
    assert exit_info.value.code == 2


def test_command_json(capsys):
    files = [str(FIXTURES / "site-a.yaml"), str(FIXTURES / "site-b.yaml")]
    assert main(["profile", "lint", "--json", *files]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem["kind"] == "disagree"
    assert (Path(problem["file"]).name, problem["line"], problem["column"]) == (
        "site-b.yaml", 7, 3)
    assert set(problem) == {"file", "line", "column", "kind", "message", "fix"}


def test_separately_checks_each_file_on_its_own(capsys):
    files = [str(FIXTURES / "site-a.yaml"), str(FIXTURES / "site-b.yaml")]
    assert main(["profile", "lint", "--separately", *files]) == 0
    capsys.readouterr()


def test_lint_accepts_builtin_names(capsys):
    assert main(["profile", "lint", "retain-uids"]) == 0
    assert main(["profile", "lint", "retain-device-identity", "retain-long-modified-dates"]) == 1
    out = capsys.readouterr().out
    assert "retain-long-modified-dates.yaml:" in out and "disagree" in out


def test_options_that_exclude_each_other_are_reported_once(capsys):
    findings = lint(["basic", "retain-long-full-dates", "retain-long-modified-dates"])
    assert [f.kind for f in findings] == ["error"]
    assert findings[0].message.startswith(
        "full dates and modified dates are mutually exclusive options (PS3.15 E.3.6); they "
        "disagree on ")
    assert main(["profile", "lint", "basic", "retain-long-full-dates",
                 "retain-long-modified-dates"]) == 1
    assert "1 problem in" in capsys.readouterr().out

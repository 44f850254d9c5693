"""docs/profiles.md is executed, so the guide cannot rot.

Conventions of the guide (also stated in an HTML comment at its top):

- A ```yaml block whose first line is ``# file: NAME`` is written to the example folder and must
  lint clean, unless an ``<!-- expect-lint-problems -->`` comment comes right before it.
- ``<!-- file: NAME -->`` before any other fenced block writes that block to the folder;
  ``<!-- dicom: NAME = TESTFILE -->`` copies one of pydicom's test files there.
- A table headed ``| attribute | before | after |`` applies the profile of the latest ``# file:``
  block to the base instance (the table headed ``| attribute | value |``) with the ``before``
  values set, and asserts every ``after`` value.
- A ```console block runs each ``$ deid ...`` line in the folder and compares what it prints with
  the lines that follow it, spaces collapsed; a ``...`` line stands for any number of lines.
- Every inline ``deid ...`` command parses, and every ``python -m MODULE`` exists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dicom_factory import to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid import standard
from deid.cli import build_parser, main
from deid.curator.lint import lint
from deid.engine import Output, deidentify_bytes
from deid.keys import SecretKey
from deid.profile import load_profiles

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "profiles.md"
KEY = SecretKey(b"docs-examples-key-0123456789abcdef", "docs")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
PRIVATE = re.compile(r"^(.+) \(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\)$")
STEP = re.compile(r"^(\w+)\[(\d+)\]$")


@dataclass
class Part:
    """One piece of the guide, in order."""

    kind: str  # yaml, file, dicom, table, base, console
    line: int
    text: str = ""
    name: str = ""
    rows: list[list[str]] = field(default_factory=list)
    lint_problems: bool = False


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_guide(text: str) -> list[Part]:
    """The guide's executable parts, in order."""
    parts: list[Part] = []
    lines = text.splitlines()
    fences = {text[:m.start()].count("\n"): m for m in FENCE.finditer(text)}
    i = 0
    while i < len(lines):
        line = lines[i]
        if i in fences:
            match = fences[i]
            language, body = match.group(1), match.group(2)
            before = lines[i - 1].strip() if i else ""
            if language == "yaml" and body.startswith("# file: "):
                name = body.splitlines()[0][len("# file: "):].strip()
                parts.append(Part("yaml", i + 1, body, name,
                                  lint_problems=before == "<!-- expect-lint-problems -->"))
            elif before.startswith("<!-- file: "):
                name = before[len("<!-- file: "):-len("-->")].strip()
                parts.append(Part("file", i + 1, body, name))
            elif language == "console":
                parts.append(Part("console", i + 1, body))
            i += body.count("\n") + 2
            continue
        if line.startswith("<!-- dicom: "):
            name, source = line[len("<!-- dicom: "):-len("-->")].split("=")
            parts.append(Part("dicom", i + 1, source.strip(), name.strip()))
        elif line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.lower() for c in _cells(line)]
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(_cells(lines[j]))
                j += 1
            if header == ["attribute", "before", "after"]:
                parts.append(Part("table", i + 1, rows=rows))
            elif header == ["attribute", "value"]:
                parts.append(Part("base", i + 1, rows=rows))
            i = j
            continue
        i += 1
    return parts


PARTS = parse_guide(GUIDE.read_text(encoding="utf-8"))


# --- values in tables -------------------------------------------------------------------------

def _literal(cell: str) -> str | None:
    """`text` -> text; an em dash or nothing -> None (absent)."""
    cell = cell.strip()
    if cell in ("", "\u2014", "-"):
        return None
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"a value is written in backticks: {cell!r}"
    return match.group(1)


def _set(ds: Dataset, where: str, value: str | None) -> None:
    """Set a value at 'Keyword', 'Seq[0]>Keyword' or 'CREATOR (gggg,xxee)'."""
    *steps, last = where.split(">")
    for step in steps:
        keyword, index = STEP.match(step).groups()
        if keyword not in ds:
            setattr(ds, keyword, Sequence([]))
        items = getattr(ds, keyword)
        while len(items) <= int(index):
            items.append(Dataset())
        ds = items[int(index)]
    private = PRIVATE.match(last)
    if private:
        creator, group, offset = private.group(1), int(private.group(2), 16), int(
            private.group(3), 16)
        block = ds.private_block(group, creator, create=True)
        block.add_new(offset, "LO", value)
        return
    if value is None:
        if last in ds:
            delattr(ds, last)
        return
    info = standard.element_by_keyword(last)
    assert info is not None, last
    values = value.split("\\")
    ds.add_new(info.tag, info.vr.split("/")[0], values[0] if len(values) == 1 else values)


def _get(ds: Dataset, where: str):
    """The element at a place, or None."""
    *steps, last = where.split(">")
    for step in steps:
        keyword, index = STEP.match(step).groups()
        if keyword not in ds or len(getattr(ds, keyword)) <= int(index):
            return None
        ds = getattr(ds, keyword)[int(index)]
    private = PRIVATE.match(last)
    if private:
        creator, group, offset = private.group(1), int(private.group(2), 16), int(
            private.group(3), 16)
        try:
            return ds.private_block(group, creator)[offset]
        except KeyError:
            return None
    info = standard.element_by_keyword(last)
    return ds.get(info.tag)


def _text(element) -> str:
    value = element.value
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _check(after_cell: str, before: str | None, element, where: str) -> None:
    cell = after_cell.strip()
    if cell == "*removed*":
        assert element is None, f"{where}: expected removed, got {element!r}"
        return
    assert element is not None, f"{where}: expected {cell}, but it was removed"
    text = _text(element)
    if cell == "*empty*":
        assert text == "", f"{where}: expected empty, got {text!r}"
    elif cell == "*unchanged*":
        assert text == before, f"{where}: expected {before!r} unchanged, got {text!r}"
    elif cell == "*a new UID*":
        assert re.fullmatch(r"2\.25\.\d+", text) and text != before, f"{where}: {text!r}"
    elif cell == "*a keyed hash*":
        assert re.fullmatch(r"[0-9A-F]{16}", text), f"{where}: {text!r}"
    elif cell == "*shifted*":
        moved = dt.datetime.strptime(text[:8], "%Y%m%d") - dt.datetime.strptime(before[:8],
                                                                                   "%Y%m%d")
        assert text[8:] == before[8:] and -3650 <= moved.days <= -1, f"{where}: {text!r}"
    else:
        expected = _literal(cell)
        assert expected is not None, f"{where}: unknown after value {cell!r}"
        if "{hash}" in expected:
            pattern = re.escape(expected).replace(re.escape("{hash}"), "[0-9A-F]{16}")
            assert re.fullmatch(pattern, text), f"{where}: {text!r} is not {expected!r}"
        else:
            assert text == expected, f"{where}: expected {expected!r}, got {text!r}"


# --- running the guide ------------------------------------------------------------------------

def _matches(expected: list[str], actual: list[str]) -> bool:
    """Lines equal with spaces collapsed; '...' stands for any number of lines."""
    def norm(line: str) -> str:
        return " ".join(line.split())

    expected = [norm(line) for line in expected]
    actual = [norm(line) for line in actual]

    def match(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if expected[e] == "...":
            return any(match(e + 1, k) for k in range(a, len(actual) + 1))
        return a < len(actual) and expected[e] == actual[a] and match(e + 1, a + 1)

    return match(0, 0)


def _console(part: Part, capsys) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in part.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"line {part.line}: output before any command"
            commands[-1][1].append(line)
    for command, expected in commands:
        args = shlex.split(command)
        assert args[0] == "deid", f"line {part.line}: only deid commands run: {command}"
        capsys.readouterr()
        main(args[1:])
        out = capsys.readouterr().out.splitlines()
        assert _matches(expected, out), (
            f"docs/profiles.md line {part.line}: `{command}` printed:\n" + "\n".join(out))


def test_the_guide_has_every_kind_of_example():
    kinds = {p.kind for p in PARTS}
    assert {"yaml", "table", "base", "console", "file", "dicom"} <= kinds
    assert sum(p.kind == "table" for p in PARTS) >= 10


def test_every_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    base = next(p for p in PARTS if p.kind == "base")
    profile_file = None
    checked = 0
    for part in PARTS:
        where = f"docs/profiles.md line {part.line}"
        if part.kind == "yaml":
            (tmp_path / part.name).write_text(part.text, encoding="utf-8")
            profile_file = part.name
            problems = lint([part.name])
            if part.lint_problems:
                assert problems, f"{where}: {part.name} was meant to have lint problems"
            else:
                assert problems == [], f"{where}: " + "; ".join(str(p) for p in problems)
        elif part.kind == "file":
            (tmp_path / part.name).write_text(part.text, encoding="utf-8")
        elif part.kind == "dicom":
            shutil.copy(get_testdata_file(part.text), tmp_path / part.name)
        elif part.kind == "table":
            assert profile_file, f"{where}: a table before any profile"
            ds = Dataset()
            for attribute, value in base.rows:
                _set(ds, attribute.strip("`"), _literal(value))
            for attribute, before, _after in part.rows:
                _set(ds, attribute.strip("`"), _literal(before))
            result = deidentify_bytes(to_bytes(ds), load_profiles([profile_file]), KEY)
            assert isinstance(result, Output), f"{where}: {result}"
            out = dcmread(io.BytesIO(result.data))
            for attribute, before, after in part.rows:
                place = attribute.strip("`")
                _check(after, _literal(before), _get(out, place), f"{where}: {place}")
                checked += 1
        elif part.kind == "console":
            _console(part, capsys)
    assert checked >= 30


def test_inline_commands_parse_and_modules_exist():
    text = re.sub(r"<!--.*?-->", "", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    commands = re.findall(r"`(deid [^`]+)`", text)
    assert commands
    parser = build_parser()
    for command in commands:
        args = shlex.split(command)[1:]
        if args[0] == "run":
            continue  # Beam parses its own options
        try:
            parser.parse_args(args)
        except SystemExit:
            # A bare mention of a command ("`deid profile show` prints ...") names one that
            # exists; anything with options or arguments must parse as written.
            assert not any(a.startswith("-") for a in args), f"`{command}` does not parse"
            with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as help_:
                parser.parse_args([*args, "--help"])
            assert help_.value.code == 0, f"docs/profiles.md: `{command}` is not a command"
    for module in re.findall(r"python -m ([\w.]+)", text):
        assert importlib.util.find_spec(module), module


def test_the_console_matcher():
    assert _matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert _matches(["a  b", "..."], ["a b"])
    assert not _matches(["a", "d"], ["a", "b", "d"])

"""Load, validate and compose YAML profiles, reporting every problem with file and line."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydicom.valuerep import VR, validate_value

from deid import standard
from deid.profile.model import (
    ACTION_ALIASES,
    ACTIONS,
    ANY_PRIVATE,
    DateShift,
    Lookup,
    MethodCode,
    PixelCondition,
    PixelPolicy,
    PixelRegion,
    PixelRule,
    Profile,
    Rule,
    Source,
    template_fields,
)

PROFILE_KEYS = ("name", "title", "description", "edition", "section", "extends", "private",
                "burned_in", "pixels", "temporal", "unlisted", "date_shift", "method_code",
                "rules")
# By VR (or 'unknown': a public tag not in the dictionary): the table's codes but U*, clean
# and shift (compound codes resolve by the attribute's Type, as for a rule).
UNLISTED_ACTIONS = ("X", "Z", "D", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "shift",
                    "remove", "empty", "dummy", "keep", "clean")
RULE_KEYS = ("attribute", "private", "action", "when", "within", "value", "template", "file",
             "key", "from_column", "to_column", "missing", "allow", "allow_patterns", "note", "vr")
TEMPORAL_VALUES = ("REMOVED", "UNMODIFIED", "MODIFIED")
TEXT_VRS = {"AE", "CS", "LO", "SH", "PN", "ST", "LT", "UT", "UC", "UR"}
VALID_VRS = frozenset(vr.value for vr in VR)
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
# Which VRs each action can apply to; None: any.
ACTION_VRS: dict[str, set[str] | None] = {
    "U": {"UI", "SQ"},  # a sequence: every UID in it replaced (Table E.1-1a, X/Z/U*)
    "X/Z/U*": {"SQ"},
    "shift": {"DA", "DT", "TM"},
    "hash": TEXT_VRS - {"UR"} | {"UI"},
    "replace": TEXT_VRS | {"DA", "DT", "TM", "AS", "DS", "IS", "UI"},
    "lookup": TEXT_VRS | {"DA", "DT", "TM", "AS", "DS", "IS", "UI"},
}
LOOKUP_MISSING = ("reject", "X", "Z", "D")
CLEAN_PIXEL_CODE = "113101"  # CID 7050 Clean Pixel Data Option
BASIC_CODE = "113100"  # CID 7050 Basic Application Confidentiality Profile
PIXELS_KEYS = ("ultrasound_regions", "ocr", "rules")
PIXEL_RULE_KEYS = ("name", "match", "blank", "note")
PIXEL_SETTINGS = {"ultrasound_regions": ("off", "keep-inside"), "ocr": ("off", "check", "redact")}
# A tag as curators type it: '(0010,0010)', '0010,0010', '00100010', '(0010, 0010)', with
# 'x' for the digits of a repeating group ('(60xx,3000)') or of a private block ('(0019,xx02)').
TAG_RE = re.compile(r"^\(?\s*([0-9A-Fa-fxX]{4})\s*,?\s*([0-9A-Fa-fxX]{4})\s*\)?$")
# Halves of a tag that YAML split at the comma: {attribute: (0010,0010)} unquoted in a flow
# mapping reads as attribute '(0010' and a key '0010)'.
TAG_HALF_RE = (re.compile(r"^\(?\s*[0-9A-Fa-fxX]{4}$"), re.compile(r"^\s*[0-9A-Fa-fxX]{4}\s*\)$"))


@dataclass(frozen=True)
class Problem:
    """One mistake in a profile, with where it is and how to fix it."""

    file: str
    line: int
    column: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        if self.line == 0:  # not inside a file: the command line
            return f"{self.message}{fix}"
        return f"{self.file}:{self.line}:{self.column}: {self.message}{fix}"


class ProfileError(Exception):
    """A profile, or a composition of profiles, that cannot be used. Lists every problem."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- YAML with positions ----------------------------------------------------------------------

class Located(dict):
    """A YAML mapping that remembers where it and each of its keys and values stand."""

    line: int
    column: int
    key_marks: dict[str, tuple[int, int]]
    value_marks: dict[str, tuple[int, int]]


# A lookup table is read whole into the profile (and the job graph): this much at most.
MAX_LOOKUP_BYTES = 64 << 20
# Nodes a document may hold once its aliases are expanded: a real profile has a few thousand;
# nine nested aliases of ten items each ("billion laughs") would expand to 10**9.
MAX_EXPANDED_NODES = 1_000_000


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: ~4x
    """A safe loader (no code execution, so no python/* tags) whose mappings are Located,
    duplicates refused, and whose aliases may not expand beyond MAX_EXPANDED_NODES."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes of the document with every alias expanded, each shared node once per
    use, without expanding anything (iteratively: nesting may be deep)."""
    sizes: dict[int, int] = {}
    opened: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted_children = stack.pop()
        if id(node) in sizes or (not counted_children and id(node) in opened):
            continue
        if not counted_children:
            opened.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in opened)
            continue
        # A child still unsized here is an ancestor (a recursive alias): the constructor
        # refuses those itself.
        size = 1 + sum(sizes.get(id(child), 1) for child in _children(node))
        if size > MAX_EXPANDED_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases expand to more than {MAX_EXPANDED_NODES} values",
                node.start_mark)
        sizes[id(node)] = size


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    mapping = Located()
    mapping.line, mapping.column = node.start_mark.line + 1, node.start_mark.column + 1
    mapping.key_marks, mapping.value_marks = {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_marks[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        mapping.value_marks[key] = (value_node.start_mark.line + 1,
                                    value_node.start_mark.column + 1)
    return mapping


class LocatedList(list):
    """A YAML sequence that remembers where each of its items stands."""

    marks: list[tuple[int, int]]


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    items = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    items.marks = [(child.start_mark.line + 1, child.start_mark.column + 1)
                   for child in node.value]
    return items


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# --- finding profiles -------------------------------------------------------------------------

def builtin_names() -> list[str]:
    """The names of the built-in profiles."""
    folder = resources.files("deid.builtin_profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec


def _read_spec(spec: str, relative_to: Path | None) -> tuple[str, str]:
    """(display path, text) of a profile given by built-in name or by path."""
    if _looks_like_path(spec):
        path = Path(spec)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        return str(path), path.read_text(encoding="utf-8")
    resource = resources.files("deid.builtin_profiles").joinpath(f"{spec}.yaml")
    if not resource.is_file():
        raise FileNotFoundError(spec)
    return f"profiles/{spec}.yaml", resource.read_text(encoding="utf-8")


def missing_profile(spec: str, relative_to: Path | None = None) -> tuple[str, str]:
    """(message, fix) for a profile that cannot be read: a file by its path, with the files of
    its folder that are close; a built-in name with the names that are."""
    if not _looks_like_path(spec):
        builtins = builtin_names()
        return (f"no such profile {spec!r}",
                _suggest(spec, builtins) or f"built-in profiles: {', '.join(builtins)}")
    path = Path(spec) if relative_to is None or Path(spec).is_absolute() else relative_to / spec
    if path.is_dir():
        return f"{path} is a folder, not a profile file", "name a .yaml file"
    try:
        near = [p.name for p in path.parent.iterdir() if p.suffix in (".yaml", ".yml")]
    except OSError:
        near = []
    close = difflib.get_close_matches(path.name, near, n=1, cutoff=0.6)
    fix = (f"did you mean {str(path.with_name(close[0]))!r}?" if close
           else "check the path (relative to " + ("the profile's folder)" if relative_to
                                                  is not None else "the current folder)"))
    return f"no such file: {path}", fix


# --- validation of one document ---------------------------------------------------------------

@dataclass
class ProfileDocument:
    """One profile file, validated; rules in file order, each with its selector key."""

    name: str
    path: str
    folder: Path | None
    data: Located
    extends: list[tuple[str, Source]]
    rules: list[tuple[tuple, Rule]]  # (selector key, rule)
    pixel_rules: list[PixelRule]


class _Checker:
    """Collects the problems of one file."""

    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []

    def add(self, where: tuple[int, int], message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.path, where[0], where[1], message, fix))


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _parse_document(path: str, text: str, folder: Path | None) -> ProfileDocument:
    check = _Checker(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError([Problem(path, *where, f"not valid YAML: {problem}",
                                    "check indentation and quoting at this point")]) from None
    if not isinstance(data, Located):
        raise ProfileError([Problem(path, 1, 1, "a profile is a YAML mapping",
                                    "start with 'name: my-profile' and a 'rules:' list")])
    for key in data:
        if key not in PROFILE_KEYS:
            check.add(data.key_marks[key], f"unknown profile key {key!r}",
                      _suggest(str(key), PROFILE_KEYS) or f"use one of {', '.join(PROFILE_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        check.add((data.line, data.column), "the profile has no 'name'",
                  "add 'name: my-profile' at the top")
        name = Path(path).stem
    _check_settings(data, check)
    extends = []
    raw_extends = data.get("extends", [])
    if isinstance(raw_extends, str):
        raw_extends = [raw_extends]
    if not isinstance(raw_extends, list) or not all(isinstance(e, str) for e in raw_extends):
        check.add(data.value_marks.get("extends", (data.line, 1)),
                  "'extends' is a list of profile names or paths",
                  "write e.g. 'extends: [basic, retain-uids]'")
    else:
        line, col = data.value_marks.get("extends", (data.line, 1))
        extends = [(e, Source(path, line, col)) for e in raw_extends]
    rules = []
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        check.add(data.value_marks.get("rules", (data.line, 1)), "'rules' is a list of rules",
                  "write each rule as '- {attribute: Keyword, action: X}'")
        raw_rules = []
    for raw in raw_rules:
        rule = _parse_rule(raw, name, check, folder)
        if rule is not None:
            rules.append(rule)
    pixel_rules = _parse_pixels(data, name, check)
    if check.problems:
        raise ProfileError(check.problems)
    return ProfileDocument(name, path, folder, data, extends, rules, pixel_rules)


def _check_settings(data: Located, check: _Checker) -> None:
    def where(key: str) -> tuple[int, int]:
        return data.value_marks[key]

    if "private" in data and data["private"] not in ("remove", "keep"):
        check.add(where("private"), "'private' is 'remove' or 'keep'",
                  "use 'remove' and keep chosen private elements with private rules")
    if "burned_in" in data and data["burned_in"] not in ("reject", "clean", "accept"):
        check.add(where("burned_in"), "'burned_in' is 'reject', 'clean' or 'accept'")
    if "temporal" in data and data["temporal"] not in TEMPORAL_VALUES:
        check.add(where("temporal"), f"'temporal' is one of {', '.join(TEMPORAL_VALUES)}")
    unlisted = data.get("unlisted", {})
    if not isinstance(unlisted, dict):
        check.add(where("unlisted"), "'unlisted' maps a VR to an action",
                  "e.g. 'unlisted: {PN: X}'")
    else:
        for vr, action in unlisted.items():
            if action not in UNLISTED_ACTIONS:
                check.add(unlisted.value_marks[vr] if isinstance(unlisted, Located) else where(
                    "unlisted"), f"unlisted {vr}: action must be one of "
                    f"{', '.join(UNLISTED_ACTIONS)}")
    if "date_shift" in data:
        _check_date_shift(data, check)
    code = data.get("method_code")
    if code is not None and not (isinstance(code, dict) and {"value", "scheme", "meaning"} <= set(
            code)):
        check.add(where("method_code"), "'method_code' needs value, scheme and meaning")


DATE_SHIFT_KEYS = ("min_days", "max_days")
DATE_SHIFT_EXAMPLE = "e.g. 'date_shift: {min_days: -3650, max_days: -1}'"
# A shifted date is written only between these years (deid.engine.dates); a range must keep
# the dates of 1900 to 2100 inside them.
SHIFT_YEARS = (1000, 9999)
SHIFT_LIMITS = (-(date(1900, 1, 1) - date(SHIFT_YEARS[0], 1, 1)).days,
                (date(SHIFT_YEARS[1], 12, 31) - date(2100, 12, 31)).days)


def _check_date_shift(data: Located, check: _Checker) -> None:
    """'date_shift: {min_days: N, max_days: M}': each mistake its own message."""
    shift = data["date_shift"]
    if not isinstance(shift, Located):
        fixed = _whole_days(shift)
        fix = (f"for a fixed shift of {fixed} days write 'date_shift: {{min_days: {fixed}, "
               f"max_days: {fixed}}}'" if fixed is not None else DATE_SHIFT_EXAMPLE)
        check.add(data.value_marks["date_shift"], "'date_shift' is a range of days, "
                  "{min_days: N, max_days: M}, not a single value", fix)
        return
    for key in shift:
        if key not in DATE_SHIFT_KEYS:
            near = [k for k in DATE_SHIFT_KEYS if k.startswith(str(key))]
            check.add(shift.key_marks[key], f"unknown date_shift key {key!r}",
                      f"did you mean {near[0]!r}?" if near else _suggest(str(key),
                                                                         DATE_SHIFT_KEYS)
                      or "use min_days and max_days")
    days = {}
    for key in DATE_SHIFT_KEYS:
        if key not in shift:
            continue
        value = shift[key]
        if isinstance(value, int) and not isinstance(value, bool):
            days[key] = value
            continue
        whole = _whole_days(value)
        if isinstance(value, float):
            message, fix = (f"{key} is {value}: a shift is a whole number of days",
                            f"write {key}: {round(value)}")
        elif whole is not None:
            message, fix = (f"{key} is {value!r}: write the number of days alone, without "
                            "units or quotes", f"write {key}: {whole}")
        else:
            message, fix = f"{key} is {value!r}, not a number of days", DATE_SHIFT_EXAMPLE
        check.add(shift.value_marks[key], message, fix)
    low, high = days.get("min_days", DateShift.min_days), days.get("max_days",
                                                                    DateShift.max_days)
    if low > high:
        check.add(shift.value_marks.get("min_days", (shift.line, shift.column)),
                  f"min_days ({low}) is more than max_days ({high})", "swap them")
    for key, value, limit in (("min_days", low, SHIFT_LIMITS[0]),
                              ("max_days", high, SHIFT_LIMITS[1])):
        bound = "at or above" if key == "min_days" else "at or below"
        if key in days and (value < limit if key == "min_days" else value > limit):
            check.add(shift.value_marks[key],
                      f"{key} {value} moves dates out of the years {SHIFT_YEARS[0]} to "
                      f"{SHIFT_YEARS[1]} a DICOM date can be written in, so they would be "
                      "emptied", f"keep {key} {bound} {limit} days (a few years are enough to "
                      "hide a date)")


def _whole_days(value: Any) -> int | None:
    """The whole number of days in '-30', '-30 days', '30d' or -30.0, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else None
    match = re.fullmatch(r"\s*([+-]?\d+)\s*(?:d|days?)?\s*", str(value), re.IGNORECASE)
    return int(match.group(1)) if match else None


def _parse_selector(raw: Located, check: _Checker) -> tuple[tuple, str, str | None] | None:
    """(selector key, selector text, VR or None) of a rule."""
    if ("attribute" in raw) == ("private" in raw):
        check.add((raw.line, raw.column), "a rule names either 'attribute' or 'private'",
                  "e.g. '{attribute: PatientName, action: X}'")
        return None
    if "private" in raw:
        return _private_selector(raw, check)
    where = raw.value_marks["attribute"]
    attribute = raw["attribute"]
    if isinstance(attribute, int) and not isinstance(attribute, bool):
        written = _unquoted_number(attribute)
        check.add(where, f"the tag {written} must be quoted: YAML reads it unquoted as the "
                  f"number {attribute}", f"write '{written}' (with the quotes)")
        return None
    if not isinstance(attribute, str):
        check.add(where, f"attribute {attribute!r} is neither a keyword nor a tag",
                  "quote tags: '(0010,0010)'")
        return None
    attribute = attribute.strip()
    match = TAG_RE.match(attribute)
    if match:
        group, element = match.groups()
        attribute = f"({group.upper().replace('X', 'x')},{element.upper().replace('X', 'x')})"
        if "x" not in group.lower() and int(group, 16) % 2:
            check.add(where, f"{attribute} is a private tag: it needs its private creator",
                      f"write \"private: {{creator: NAME, tag: '({group.upper()},xx"
                      f"{element[2:].upper()})'}}\"")
            return None
        if "x" in (group + element).lower():
            mask, value = tag_pattern(attribute)
            info = standard.element_by_tag(value)
            vr = info.vr if info and "x" not in element.lower() else None
            return ("pattern", mask, value), attribute, vr
        tag = int(group + element, 16)
        info = standard.element_by_tag(tag)
        return ("tag", tag), attribute, info.vr if info else None
    info = standard.element_by_keyword(attribute)
    if info is None:
        check.add(where, f"unknown keyword {attribute!r}",
                  _suggest(attribute, standard.keywords()) or "use a PS3.6 keyword or a tag")
        return None
    mask = standard.repeating_mask(attribute)
    if mask is not None:
        return ("pattern", mask, info.tag), attribute, info.vr
    return ("tag", info.tag), attribute, info.vr


def tag_pattern(text: str) -> tuple[int, int] | None:
    """(mask, value) of a tag in any spelling TAG_RE takes; 'x' digits are 0 in the mask
    ('(60xx,3000)' -> (0xFF00FFFF, 0x60003000)). None if the text is not a tag."""
    match = TAG_RE.match(text.strip())
    if not match:
        return None
    digits = "".join(match.groups()).lower()
    return (int("".join("0" if c == "x" else "f" for c in digits), 16),
            int(digits.replace("x", "0"), 16))


def _element_info(name: str) -> standard.ElementInfo | None:
    """A public attribute named by keyword or by a concrete tag in any spelling."""
    pattern = tag_pattern(name)
    if pattern is not None and pattern[0] == 0xFFFFFFFF:
        return standard.element_by_tag(pattern[1])
    return standard.element_by_keyword(name)


def _unquoted_number(number: int) -> str:
    """How a tag YAML read as a number was written: '00100010' is octal to YAML 1.1 (a leading
    0 and digits up to 7, so below 8**7), other digits a decimal number."""
    return f"{number:o}".zfill(8) if 0 <= number < 8 ** 7 else str(number).zfill(8)


def _private_selector(raw: Located, check: _Checker) -> tuple[tuple, str, str | None] | None:
    """A private rule's selector: a creator's element '(0043,xx39)' (a tag copied from a file,
    '(0043,1039)', names the same element: its block byte differs from file to file), every
    element of the creator's block in a group '(0043,xxxx)', or, without 'tag', every element
    of the creator."""
    where = raw.value_marks["private"]
    spec = raw["private"]
    usage = ("\"private: {creator: GEMS_PARM_01, tag: '(0043,xx39)'}\", or without tag for "
             "every element of the creator")
    if not (isinstance(spec, dict) and "creator" in spec and set(spec) <= {"creator", "tag"}
            and isinstance(spec["creator"], str) and spec["creator"].strip()
            and isinstance(spec.get("tag", ""), str)):
        if isinstance(spec, dict) and isinstance(spec.get("tag"), int):
            written = _unquoted_number(spec["tag"])
            check.add(where, f"the tag {written} must be quoted: YAML reads it unquoted as the "
                      f"number {spec['tag']}", f"write '{written}' (with the quotes)")
            return None
        check.add(where, "'private' is {creator: NAME, tag: '(gggg,xxee)'}", f"e.g. {usage}")
        return None
    creator = spec["creator"].strip()
    if "tag" not in spec:
        return ("private", creator, ANY_PRIVATE, ANY_PRIVATE), f"{creator} (every element)", None
    match = TAG_RE.match(spec["tag"].strip())
    group_text, element = match.groups() if match else ("", "")
    if (not match or "x" in group_text.lower() or int(group_text, 16) % 2 == 0
            or not re.fullmatch(r"(xx|[0-9a-f]{2})([0-9a-f]{2}|xx)", element, re.IGNORECASE)
            or (element[:2].lower() != "xx" and not 0x10 <= int(element[:2], 16) <= 0xFF)):
        check.add(where, f"bad private tag {spec['tag']!r}",
                  "write an odd group and the element offset: '(0043,xx39)', or '(0043,xxxx)' "
                  "for the creator's whole block")
        return None
    group = int(group_text, 16)
    if element[2:].lower() == "xx":
        return ("private", creator, group, ANY_PRIVATE), f"{creator} ({group:04X},xxxx)", None
    offset = int(element[2:], 16)
    return ("private", creator, group, offset), f"{creator} ({group:04X},xx{offset:02X})", None


def _split_tag(raw: Located) -> str | None:
    """The tag of a rule whose unquoted '(gggg,eeee)' YAML split at its comma, or None."""
    attribute = raw.get("attribute")
    if not isinstance(attribute, str) or not TAG_HALF_RE[0].match(attribute):
        return None
    second = next((k for k in raw if isinstance(k, str) and raw[k] is None
                   and TAG_HALF_RE[1].match(k)), None)
    if second is None:
        return None
    del raw[second]
    return f"{attribute.strip()},{second.strip()}"


def _parse_rule(raw: Any, profile: str, check: _Checker,
                folder: Path | None) -> tuple[tuple, Rule] | None:
    if not isinstance(raw, Located):
        check.add((1, 1), f"a rule is a mapping, not {raw!r}",
                  "write '- {attribute: Keyword, action: X}'")
        return None
    split = _split_tag(raw)
    if split is not None:
        check.add(raw.value_marks["attribute"], f"the tag {split} must be quoted: unquoted, "
                  "YAML splits it at the comma", f"write '{split}' (with the quotes)")
        return None
    for key in raw:
        if key not in RULE_KEYS:
            check.add(raw.key_marks[key], f"unknown rule key {key!r}",
                      _suggest(str(key), RULE_KEYS) or f"use one of {', '.join(RULE_KEYS)}")
    selector = _parse_selector(raw, check)
    action = raw.get("action")
    action_where = raw.value_marks.get("action", (raw.line, raw.column))
    if action is None:
        check.add((raw.line, raw.column), "the rule has no 'action'",
                  f"add 'action:' with one of {', '.join(ACTIONS)}")
        return None
    action = ACTION_ALIASES.get(str(action), str(action))
    if action not in ACTIONS:
        check.add(action_where, f"unknown action {raw['action']!r}",
                  _suggest(str(raw["action"]), [*ACTIONS, *ACTION_ALIASES])
                  or f"use one of {', '.join([*ACTIONS, *ACTION_ALIASES])}")
        return None
    if selector is None:
        return None
    key, text, vr = selector
    if vr is not None:
        allowed = ACTION_VRS.get(action)
        vrs = set(vr.split("/"))
        if allowed is not None and not vrs & allowed:
            check.add(action_where, f"action {action} cannot apply to {text}, whose VR is {vr}",
                      _fix_for_vr(action, vr))
    source = Source(check.path, raw.line, raw.column)
    rule = Rule(action=action, selector=text, source=source, profile=profile)
    if "vr" in raw:
        rule = _vr_constraint(raw, rule, key, check)
    rule = _conditions(raw, rule, check)
    if rule is None:
        return None
    if action == "replace":
        rule = _replace_rule(raw, rule, vr, check)
    elif action == "lookup":
        rule = _lookup_rule(raw, rule, check, folder)
    else:
        extra = {"value", "template", "file", "key", "from_column", "to_column",
                 "missing"} & set(raw)
        if action != "C":
            extra |= {"allow", "allow_patterns"} & set(raw)
        for name in extra:
            check.add(raw.key_marks[name], f"{name!r} does not go with action {action}",
                      "remove it, or use 'replace' or 'lookup'")
    return (key, rule) if rule is not None else None


def _vr_constraint(raw: Located, rule: Rule, key: tuple, check: _Checker) -> Rule:
    """A private rule's 'vr': the VR(s) the element must have for the rule to apply."""
    where = raw.value_marks["vr"]
    value = raw["vr"]
    if key[0] != "private":
        check.add(where, "'vr' goes with private rules only",
                  "a public attribute's VR is the dictionary's")
    elif not isinstance(value, str) or not set(value.split("/")) <= VALID_VRS:
        check.add(where, f"'vr' {value!r} is not a VR", "e.g. 'vr: DS' or 'vr: OB/OW'")
    else:
        return dataclasses.replace(rule, vr=value)
    return rule


def _conditions(raw: Located, rule: Rule, check: _Checker) -> Rule | None:
    """The rule's 'when', 'within' and (for clean) 'allow' and 'allow_patterns'."""
    changes: dict[str, Any] = {}
    when = raw.get("when")
    if when is not None:
        where = raw.value_marks["when"]
        if not isinstance(when, dict) or not when:
            check.add(where, "'when' maps keywords to a value or a list of values",
                      "e.g. 'when: {Modality: [US, XA]}'")
            return None
        pairs = []
        for name, values in when.items():
            info = _element_info(str(name))
            if info is None:
                check.add(where, f"unknown keyword {name!r} in 'when'",
                          _suggest(str(name), standard.keywords()) or "use a PS3.6 keyword")
                return None
            values = values if isinstance(values, list) else [values]
            pairs.append((info.tag, frozenset(str(v).strip() for v in values)))
        changes["when"] = tuple(sorted(pairs, key=lambda p: p[0]))
    within = raw.get("within")
    if within is not None:
        info = _element_info(str(within))
        if info is None or info.vr != "SQ":
            check.add(raw.value_marks["within"],
                      f"'within' names a sequence; {within!r} is not one",
                      _suggest(str(within), standard.keywords())
                      or "e.g. 'within: ContentSequence'")
            return None
        changes["within"] = info.keyword
    if "allow" in raw:
        allow = raw["allow"]
        if not isinstance(allow, list) or not all(isinstance(v, str) for v in allow):
            check.add(raw.value_marks["allow"], "'allow' is a list of exact values to keep",
                      "e.g. \"allow: ['T1 AX', 'T2 SAG']\"")
            return None
        changes["allow"] = frozenset(allow)
    if "allow_patterns" in raw:
        patterns = raw["allow_patterns"]
        if not isinstance(patterns, list) or not all(isinstance(v, str) for v in patterns):
            check.add(raw.value_marks["allow_patterns"], "'allow_patterns' is a list of regular "
                      "expressions", "e.g. \"allow_patterns: ['^(T1|T2|FLAIR)']\"")
            return None
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                check.add(raw.value_marks["allow_patterns"], f"bad pattern {pattern!r}: {exc}",
                          "write a Python regular expression")
                return None
        changes["allow_patterns"] = tuple(patterns)
    return Rule(**{**rule.__dict__, **changes}) if changes else rule


def _fix_for_vr(action: str, vr: str) -> str:
    if action == "U":
        return "U replaces UIDs; for other values use 'hash', 'dummy' or 'replace'"
    if action == "shift":
        return "shift applies to DA, DT and TM; use 'empty', 'dummy' or 'remove'"
    if action == "X/Z/U*":
        return "X/Z/U* applies to sequences of references"
    return "use 'remove', 'empty' or 'dummy'"


def _replace_rule(raw: Located, rule: Rule, vr: str | None, check: _Checker) -> Rule | None:
    has_value, has_template = "value" in raw, "template" in raw
    if has_value == has_template:
        check.add((raw.line, raw.column), "a replace rule has either 'value' or 'template'",
                  "e.g. \"{attribute: PatientName, action: replace, value: 'SUBJECT'}\"")
        return None
    if has_template:
        template = raw["template"]
        if not isinstance(template, str):
            check.add(raw.value_marks["template"], "'template' is a string")
            return None
        try:
            fields = template_fields(template)
        except ValueError as exc:
            check.add(raw.value_marks["template"], f"bad template: {exc}",
                      "fields are written {Keyword} or {hash}")
            return None
        for name in fields:
            if name != "hash" and standard.element_by_keyword(name) is None:
                check.add(raw.value_marks["template"], f"unknown template field {name!r}",
                          _suggest(name, ["hash", *standard.keywords()])
                          or "use {hash} or the keyword of a top-level attribute")
        return Rule(**{**rule.__dict__, "template": template})
    value = raw["value"]
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        check.add(raw.value_marks["value"], "'value' is a string or a number; quote it")
        return None
    value = str(value)
    if vr is not None and "/" not in vr:
        try:
            validate_value(vr, value, 2)  # 2: raise on an invalid value
        except (ValueError, TypeError) as exc:
            check.add(raw.value_marks["value"], f"value is not valid for VR {vr}: {exc}",
                      f"write a value the VR {vr} allows (length, characters)")
            return None
    return Rule(**{**rule.__dict__, "value": value})


def _lookup_path(file_name: str, folder: Path | None) -> Path | None:
    """Where a lookup file is: an absolute path as named; a relative one inside the profile's
    folder, `..` and symbolic links resolved, else None (a profile shared with a lookup rule
    cannot make the loader read a file beside or above it)."""
    path = Path(file_name)
    if path.is_absolute() or folder is None:
        return path
    path = folder / path
    return path if path.resolve().is_relative_to(folder.resolve()) else None


def _lookup_rule(raw: Located, rule: Rule, check: _Checker, folder: Path | None) -> Rule | None:
    file_name = raw.get("file")
    if not isinstance(file_name, str):
        check.add((raw.line, raw.column), "a lookup rule needs 'file', a CSV path",
                  "e.g. '{attribute: PatientID, action: lookup, file: ids.csv}'")
        return None
    where = raw.value_marks["file"]
    path = _lookup_path(file_name, folder)
    if path is None:
        check.add(where, f"lookup file {file_name!r} is outside the profile's folder",
                  "name a file in the profile's folder or below it, or give an absolute path")
        return None
    key_tag = None
    if "key" in raw:
        info = _element_info(str(raw["key"]))
        if info is None:
            check.add(raw.value_marks["key"], f"unknown key attribute {raw['key']!r}",
                      _suggest(str(raw["key"]), standard.keywords()))
            return None
        key_tag = info.tag
    missing = ACTION_ALIASES.get(str(raw.get("missing", "reject")),
                                 str(raw.get("missing", "reject")))
    if missing not in LOOKUP_MISSING:
        check.add(raw.value_marks["missing"], f"'missing' is one of {', '.join(LOOKUP_MISSING)}",
                  "'reject' keeps an instance with an unknown value out of the output")
        return None
    try:
        if path.exists() and not path.is_file():
            check.add(where, f"lookup file {file_name!r} is not a regular file",
                      "name a CSV file")
            return None
        if path.exists() and path.stat().st_size > MAX_LOOKUP_BYTES:
            check.add(where, f"lookup file {file_name!r} is larger than "
                      f"{MAX_LOOKUP_BYTES >> 20} MiB", "split the table, or look up fewer values")
            return None
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        check.add(where, f"cannot read lookup file {file_name!r}: {exc.strerror}",
                  "paths are relative to the profile's folder")
        return None
    table = _lookup_table(raw, rows, file_name, where, check)
    if table is None:
        return None
    lookup = Lookup(file=str(path), table=table, key_tag=key_tag, missing=missing)
    return Rule(**{**rule.__dict__, "lookup": lookup})


def _lookup_table(raw: Located, rows: list[list[str]], file_name: str, where: tuple[int, int],
                  check: _Checker) -> dict[str, str] | None:
    """Original -> replacement from a lookup file's rows: a header line naming the columns
    ('from_column' and 'to_column', by default the first two), then one row per original
    value. Each problem names the line (never a value: the file holds identifiers)."""
    if not rows:
        check.add(where, f"lookup file {file_name!r} is empty",
                  "first line e.g. 'original,replacement', then one row per value")
        return None
    header = [name.strip() for name in rows[0]]
    if len(header) < 2:
        other = next((d for d in (";", "\t", "|") if d in rows[0][0]), None)
        if other is not None:
            check.add(where, f"lookup file {file_name!r} line 1 separates its columns with "
                      f"{other!r}, not commas", "save the table as CSV (comma-separated)")
        else:
            check.add(where, f"lookup file {file_name!r} line 1 has one column: it needs a "
                      "header and two columns", "first line e.g. 'original,replacement'")
        return None
    columns = []
    for option, default in (("from_column", header[0]), ("to_column", header[1])):
        name = raw.get(option, default)
        if name not in header:
            check.add(raw.value_marks.get(option, where),
                      f"lookup file {file_name!r} line 1 (the header) has no column {name!r}",
                      # Not the header's cells: without a header, they are values.
                      _suggest(name, header) or "the first line of the file names the "
                      "columns (a header such as 'original,replacement'); from_column and "
                      "to_column choose two of them")
            return None
        columns.append(header.index(name))
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line
        if len(row) <= max(columns):
            check.add(where, f"lookup file {file_name!r} line {number} has {len(row)} "
                      f"column{'s' if len(row) != 1 else ''}, the header {len(header)}",
                      "every row has the header's columns (quote a value holding a comma)")
            return None
        original = row[columns[0]].strip()
        if original in table:
            check.add(where, f"lookup file {file_name!r} line {number} repeats the original "
                      f"value of line {first_line[original]}",
                      "each original value appears once: delete one of the two lines")
            return None
        table[original] = row[columns[1]].strip()
        first_line[original] = number
    return table


# --- pixel rules (PS3.15 E.3.1) -------------------------------------------------------------

def _parse_pixels(data: Located, profile: str, check: _Checker) -> list[PixelRule]:
    """The 'pixels' section: its settings are checked, its rules returned in file order."""
    if "pixels" not in data:
        return []
    pixels = data["pixels"]
    if not isinstance(pixels, Located):
        check.add(data.value_marks["pixels"], "'pixels' is a mapping",
                  "e.g. 'pixels: {ultrasound_regions: keep-inside, rules: [...]}'")
        return []
    for key in pixels:
        if key not in PIXELS_KEYS:
            check.add(pixels.key_marks[key], f"unknown pixels key {key!r}",
                      _suggest(str(key), PIXELS_KEYS) or f"use one of {', '.join(PIXELS_KEYS)}")
    for key, allowed in PIXEL_SETTINGS.items():
        if key in pixels and pixel_setting(pixels[key]) not in allowed:
            check.add(pixels.value_marks[key], f"'{key}' is one of {', '.join(allowed)}")
    raw_rules = pixels.get("rules", [])
    if not isinstance(raw_rules, list):
        check.add(pixels.value_marks["rules"], "pixels 'rules' is a list of rules",
                  "write each rule as '- {name: ..., match: {...}, blank: [[l, t, w, h]]}'")
        return []
    rules: list[PixelRule] = []
    for raw in raw_rules:
        rule = _parse_pixel_rule(raw, profile, check)
        if rule is None:
            continue
        earlier = next((r for r in rules if r.name == rule.name), None)
        if earlier is not None:
            check.add((rule.source.line, rule.source.column),
                      f"a second pixel rule named {rule.name!r} (the first is at line "
                      f"{earlier.source.line})", "give each rule of a file its own name")
            continue
        rules.append(rule)
    return rules


def pixel_setting(value: Any) -> Any:
    """A pixels setting as written; YAML reads a bare 'off' as false."""
    return "off" if value is False else value


def _parse_pixel_rule(raw: Any, profile: str, check: _Checker) -> PixelRule | None:
    if not isinstance(raw, Located):
        check.add((1, 1), f"a pixel rule is a mapping, not {raw!r}",
                  "write '- {name: ..., match: {...}, blank: [[left, top, width, height]]}'")
        return None
    where = (raw.line, raw.column)
    for key in raw:
        if key not in PIXEL_RULE_KEYS:
            fix = ("frames go with a region: 'blank: [{region: [0, 0, 640, 48], frames: [1]}]'"
                   if key == "frames" else _suggest(str(key), PIXEL_RULE_KEYS)
                   or f"use one of {', '.join(PIXEL_RULE_KEYS)}")
            check.add(raw.key_marks[key], f"unknown pixel rule key {key!r}", fix)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        check.add(where, "the pixel rule has no 'name'",
                  "add e.g. 'name: acme-us-header' (explain and lint show it)")
        return None
    match = _pixel_match(raw, check)
    blank = _pixel_regions(raw, check)
    if match is None or blank is None:
        return None
    return PixelRule(name.strip(), match, blank, Source(check.path, *where), profile)


def _pixel_match(raw: Located, check: _Checker) -> tuple[PixelCondition, ...] | None:
    """'match': keyword -> a value, a list of values (exact) or {pattern: REGEX} (searched)."""
    match = raw.get("match")
    if not isinstance(match, Located) or not match:
        check.add(raw.value_marks.get("match", (raw.line, raw.column)),
                  "a pixel rule needs 'match', keywords and the values they must have",
                  "e.g. \"match: {Manufacturer: ACME, ManufacturerModelName: {pattern: "
                  "'^Sono'}}\"")
        return None
    conditions = []
    for keyword, wanted in match.items():
        where = match.value_marks[keyword]
        info = _element_info(str(keyword))
        if info is None:
            check.add(match.key_marks[keyword], f"unknown keyword {keyword!r} in 'match'",
                      _suggest(str(keyword), standard.keywords()) or "use a PS3.6 keyword")
            return None
        if isinstance(wanted, Located):
            pattern = wanted.get("pattern")
            if set(wanted) != {"pattern"} or not isinstance(pattern, str):
                check.add(where, f"{keyword}: a pattern is written {{pattern: REGEX}}",
                          "e.g. \"{pattern: '^ACME'}\" (a Python regular expression, searched)")
                return None
            try:
                re.compile(pattern)
            except re.error as exc:
                check.add(where, f"bad pattern {pattern!r}: {exc}",
                          "write a Python regular expression")
                return None
            conditions.append(PixelCondition(info.tag, info.keyword, pattern=pattern))
            continue
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                 for v in values):
            check.add(where, f"{keyword}: match a value, a list of values or {{pattern: REGEX}}",
                      "quote values YAML would read otherwise, e.g. 'YES'")
            return None
        conditions.append(PixelCondition(info.tag, info.keyword,
                                         frozenset(str(v).strip() for v in values)))
    return tuple(conditions)


def _pixel_regions(raw: Located, check: _Checker) -> tuple[PixelRegion, ...] | None:
    """'blank': regions [left, top, width, height], or {region: [...], frames: [1, 2]}."""
    blank = raw.get("blank")
    if not isinstance(blank, LocatedList) or not blank:
        check.add(raw.value_marks.get("blank", (raw.line, raw.column)),
                  "a pixel rule needs 'blank', a list of regions [left, top, width, height]",
                  "e.g. 'blank: [[0, 0, 640, 48]]' blanks the top 48 rows of a 640-wide image")
        return None
    regions = []
    for item, where in zip(blank, blank.marks, strict=True):
        frames = None
        box = item
        if isinstance(item, Located):
            if set(item) - {"region", "frames"} or "region" not in item:
                check.add(where, "a region with frames is {region: [left, top, width, height], "
                          "frames: [1, 2]}")
                return None
            box, frames = item["region"], item.get("frames")
            if not (isinstance(frames, list) and frames and all(
                    _is_int(f) and f >= 1 for f in frames)):
                check.add(item.value_marks.get("frames", where),
                          "'frames' is a list of frame numbers, counted from 1",
                          "e.g. 'frames: [1]'; leave 'frames' out for every frame")
                return None
            frames = tuple(sorted(set(frames)))
        if not (isinstance(box, list) and len(box) == 4 and all(_is_int(v) for v in box)):
            check.add(where, "a region is [left, top, width, height], four whole numbers of "
                      "pixels", "e.g. [0, 0, 640, 48]")
            return None
        left, top, width, height = box
        if left < 0 or top < 0 or width <= 0 or height <= 0:
            check.add(where, f"region {box}: left and top are 0 or more, width and height more "
                      "than 0", "columns count from 0 at the left, rows from 0 at the top")
            return None
        regions.append(PixelRegion(left, top, width, height, frames, Source(check.path, *where)))
    return tuple(regions)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _compose_pixels(documents: list[ProfileDocument], burned_in: str) -> PixelPolicy:
    """Later wins: a later profile's rules are tried before an earlier one's (each file's top
    to bottom), a rule replaces an earlier profile's rule of the same name, and a later
    setting replaces an earlier one. Pixel rules act only with burned_in: clean (E.3.1)."""
    rules: list[PixelRule] = []
    settings: dict[str, str] = {}
    last: ProfileDocument | None = None
    for doc in documents:
        pixels = doc.data.get("pixels")
        if not isinstance(pixels, dict):
            continue
        last = doc
        for key in PIXEL_SETTINGS:
            if key in pixels:
                settings[key] = pixel_setting(pixels[key])
        names = {rule.name for rule in doc.pixel_rules}
        rules = [*doc.pixel_rules, *(rule for rule in rules if rule.name not in names)]
    policy = PixelPolicy(tuple(rules), **settings)
    if last is not None and burned_in != "clean" and (
            policy.rules or policy.ultrasound_regions != "off" or policy.ocr != "off"):
        raise ProfileError([Problem(
            last.path, *last.data.key_marks["pixels"],
            f"pixel cleaning needs burned_in: clean, and this composition has burned_in: "
            f"{burned_in}, so its pixels section would never apply (PS3.15 E.3.1)",
            "extend clean-pixel-data (or set 'burned_in: clean') in the profile with the "
            "pixel rules")])
    return policy


# --- composition ------------------------------------------------------------------------------

def load_documents(specs: Sequence[str]) -> list[ProfileDocument]:
    """Every profile in application order: each one's 'extends' before it, each file once."""
    order: list[ProfileDocument] = []
    seen: set[str] = set()
    problems: list[Problem] = []

    def visit(spec: str, relative_to: Path | None, where: Source | None,
              stack: tuple[str, ...]) -> None:
        try:
            path, text = _read_spec(spec, relative_to)
        except (OSError, FileNotFoundError):
            message, fix = missing_profile(spec, relative_to)
            if where is None:
                problems.append(Problem(spec, 0, 0, message, fix))
            else:
                problems.append(Problem(where.file, where.line, where.column, message, fix))
            return
        identity = str(Path(path).resolve()) if _looks_like_path(spec) else path
        if identity in stack:
            problems.append(Problem(path, 1, 1, "profiles extend each other in a cycle",
                                    "remove one of the 'extends'"))
            return
        if identity in seen:
            return
        folder = Path(path).parent if _looks_like_path(spec) else None
        try:
            document = _parse_document(path, text, folder)
        except ProfileError as exc:
            problems.extend(exc.problems)
            return
        for parent, source in document.extends:
            visit(parent, folder, source, (*stack, identity))
        if identity not in seen:
            seen.add(identity)
            order.append(document)

    for spec in specs:
        visit(spec, None, None, ())
    if problems:
        raise ProfileError(problems)
    return order


def load_profiles(specs: Sequence[str]) -> Profile:
    """Resolve profiles given by built-in name or path, applied in order (later wins)."""
    if not specs:
        raise ProfileError([Problem("<command line>", 0, 0, "no profile given",
                                    "pass --profile basic, or a profile file")])
    return compose(load_documents(specs))


def compose(documents: list[ProfileDocument]) -> Profile:
    """The profile of documents loaded by load_documents, in their order (later wins)."""
    by_tag: dict[int, list[Rule]] = {}
    by_pattern: dict[tuple[int, int], list[Rule]] = {}
    by_private: dict[tuple[str, int, int], list[Rule]] = {}
    unlisted: dict[str, Rule] = {}
    settings: dict[str, Any] = {}
    codes: list[MethodCode] = []
    for doc in documents:
        for key, rule in doc.rules:
            if key[0] == "tag":
                _add_candidate(by_tag.setdefault(key[1], []), rule)
            elif key[0] == "pattern":
                _add_candidate(by_pattern.setdefault(key[1:], []), rule)
            else:
                _add_candidate(by_private.setdefault(key[1:], []), rule)
        policy = doc.data.get("unlisted", {})
        for vr, action in policy.items():
            line, col = (policy.value_marks[vr] if isinstance(policy, Located)
                         else doc.data.value_marks["unlisted"])
            unlisted[vr] = Rule(action=ACTION_ALIASES.get(action, action),
                                selector=f"any unlisted {vr}", source=Source(doc.path, line, col),
                                profile=doc.name)
        for key in ("private", "burned_in", "temporal", "date_shift"):
            if key in doc.data:
                settings[key] = doc.data[key]
        code = doc.data.get("method_code")
        if code:
            codes.append(MethodCode(str(code["value"]), code["scheme"], code["meaning"]))
    _check_exclusive(documents)
    burned_in = settings.get("burned_in", "reject")
    pixels = _compose_pixels(documents, burned_in)
    if burned_in == "clean" and not any(code.value == CLEAN_PIXEL_CODE for code in codes):
        # PS3.15 E.3.1: a profile that cleans pixels applies the Clean Pixel Data Option, also
        # when it sets burned_in: clean itself instead of extending clean-pixel-data.
        codes.append(MethodCode(CLEAN_PIXEL_CODE, *standard.method_code(CLEAN_PIXEL_CODE)))
    temporal = settings.get("temporal", "REMOVED")
    # PS3.15 E.1.1: the Basic Profile's code and Patient Identity Removed only for a
    # composition that applies it (the built-in, which a file of the same name is not).
    basic = any(doc.name == "basic" and doc.folder is None for doc in documents)
    profile = Profile(
        names=tuple(doc.name for doc in documents),
        editions=tuple(str(doc.data["edition"]) for doc in documents if "edition" in doc.data),
        by_tag={tag: tuple(reversed(rules)) for tag, rules in by_tag.items()},
        # The most specific pattern first: (60xx,3000) before (60xx,xxxx).
        by_pattern=tuple(sorted(((mask, value, tuple(reversed(rules)))
                                 for (mask, value), rules in by_pattern.items()),
                                key=lambda entry: -entry[0].bit_count())),
        by_private={key: tuple(reversed(rules)) for key, rules in by_private.items()},
        unlisted=unlisted,
        private=settings.get("private", "remove"),
        burned_in=burned_in,
        pixels=pixels,
        temporal=temporal,
        date_shift=DateShift(**settings.get("date_shift", {})),
        method_codes=tuple(code for code in codes if basic or code.value != BASIC_CODE),
        basic=basic,
    )
    if temporal == "REMOVED" and any(r.action == "shift" for r in profile.all_rules()):
        # E.3.6: some dates are shifted, not removed.
        return dataclasses.replace(profile, temporal="MODIFIED")
    return profile


def _add_candidate(candidates: list[Rule], rule: Rule) -> None:
    """Add a later rule: it replaces every earlier one with the same conditions, and an
    unconditional rule replaces them all (later wins)."""
    if not rule.conditional:
        candidates.clear()
    else:
        candidates[:] = [r for r in candidates if r.condition_key != rule.condition_key]
    candidates.append(rule)


EXCLUSIVE_MESSAGE = ("full dates and modified dates are mutually exclusive options "
                     "(PS3.15 E.3.6)")


def _check_exclusive(documents: list[ProfileDocument]) -> None:
    """PS3.15 E.3.6: the two Retain Longitudinal Temporal Information options exclude each
    other."""
    temporal = [(doc, doc.data["temporal"]) for doc in documents
                if doc.data.get("temporal") in ("UNMODIFIED", "MODIFIED")]
    if len({value for _, value in temporal}) > 1:
        doc = temporal[-1][0]
        line, col = doc.data.value_marks["temporal"]
        raise ProfileError([Problem(
            doc.path, line, col,
            EXCLUSIVE_MESSAGE,
            "compose only one of retain-long-full-dates and retain-long-modified-dates")])


__all__ = ["Problem", "ProfileDocument", "ProfileError", "builtin_names", "compose",
           "load_documents", "load_profiles"]

"""Facts from the DICOM Standard, as data generated from its own tables (see README.md)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

EDITION = "2026c"


@dataclass(frozen=True)
class ElementInfo:
    """One PS3.6 data dictionary entry."""

    tag: int
    keyword: str
    vr: str  # 'OB/OW' where the dictionary allows more than one
    vm: str
    retired: bool


def _read(name: str) -> dict:
    with resources.files(__package__).joinpath("data", name).open(encoding="utf-8") as f:
        return json.load(f)


@cache
def reviewed_kept_tags() -> frozenset[int]:
    """The tags of the technical text attributes the unlisted policy's reviewers keep
    (unlisted.yaml, 'keep'): kept, yet never a place for the instance's own names and IDs."""
    import yaml  # only here: the rest of this module reads JSON

    with resources.files(__package__).joinpath("unlisted.yaml").open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return frozenset(info.tag for item in data.get("keep", [])
                     if (info := element_by_keyword(item["attribute"])) is not None)


def method_code(value: str) -> tuple[str, str]:
    """(coding scheme, meaning) of a CID 7050 De-identification Method code."""
    code = _read("cid7050.json")["codes"][value]
    return code["scheme"], code["meaning"]


@cache
def _dictionary() -> tuple[dict[int, ElementInfo], dict[str, ElementInfo]]:
    by_tag: dict[int, ElementInfo] = {}
    by_keyword: dict[str, ElementInfo] = {}
    for key, (keyword, vr, vm, retired) in _read("dictionary.json")["elements"].items():
        if "x" in key:
            continue  # repeating groups are matched by pattern, see repeating_element()
        info = ElementInfo(int(key, 16), keyword, vr, vm, retired)
        by_tag[info.tag] = info
        by_keyword[keyword] = info
    return by_tag, by_keyword


@cache
def _repeating() -> dict[str, tuple[int, int, ElementInfo]]:
    """Keyword -> (mask, value, info) for repeating-group entries such as (60xx,3000)."""
    out = {}
    for key, (keyword, vr, vm, retired) in _read("dictionary.json")["elements"].items():
        if "x" not in key:
            continue
        mask = int("".join("0" if c == "x" else "F" for c in key), 16)
        value = int(key.replace("x", "0"), 16)
        out[keyword] = (mask, value, ElementInfo(value, keyword, vr, vm, retired))
    return out


def element_by_tag(tag: int) -> ElementInfo | None:
    """The dictionary entry of a public tag, repeating groups included."""
    info = _dictionary()[0].get(tag)
    if info is not None:
        return info
    for mask, value, rep in _repeating().values():
        if tag & mask == value:
            return rep
    return None


def tag_text(tag: int) -> str:
    """A tag as PS3.6 writes it: '(0010,0010)'."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def keyword_of(tag: int) -> str:
    """A tag's keyword, or the tag as text where the dictionary does not hold it."""
    info = element_by_tag(tag)
    return info.keyword if info else tag_text(tag)


@functools.lru_cache(maxsize=4096)
def in_dictionary(tag: int) -> bool:
    """Whether a public tag is in the PS3.6 data dictionary (repeating groups included)."""
    return element_by_tag(tag) is not None


def element_by_keyword(keyword: str) -> ElementInfo | None:
    """The dictionary entry of a keyword; repeating-group entries carry their base tag."""
    info = _dictionary()[1].get(keyword)
    if info is not None:
        return info
    rep = _repeating().get(keyword)
    return rep[2] if rep else None


def repeating_mask(keyword: str) -> int | None:
    """The tag mask of a repeating-group keyword (e.g. OverlayData), None for others."""
    rep = _repeating().get(keyword)
    return rep[0] if rep else None


def keywords() -> list[str]:
    """Every keyword of the dictionary, for suggestions."""
    return [*_dictionary()[1], *_repeating()]


@cache
def _iod_types() -> dict:
    return _read("iod_types.json")


def iod_of_sop_class(sop_class_uid: str) -> str | None:
    """The IOD (highdicom's key, e.g. 'ct-image') of a Storage SOP Class, if known."""
    return _iod_types()["sop_classes"].get(sop_class_uid)


@functools.lru_cache(maxsize=1 << 16)  # per element of every instance: looked up once
def attribute_type(iod: str, keyword: str, path: tuple[str, ...]) -> str | None:
    """The Type ('1', '2' or '3'; 1C and 2C as 1 and 2, but for an attribute with a
    condition_of, whose C is kept) of an attribute at a sequence path in an IOD. '' when the
    IOD does not define the attribute anywhere; None when the Type is not known: defined
    elsewhere in the IOD but not at this path, or an attribute whose Types were not extracted
    (only those Table E.1-1 gives a compound code or removes where an IOD requires them, and
    those the unlisted policy resolves by Type)."""
    data = _iod_types()
    if keyword not in _compound_keywords():
        return _unlisted_type(iod, keyword, path)
    types = data["iods"].get(iod, {}).get(keyword)
    if types is None:
        return ""
    return types.get("/".join(path))


@cache
def _compound_keywords() -> frozenset[str]:
    return frozenset(_iod_types()["keywords"])


@functools.lru_cache(maxsize=1024)
def removed_unless_required(keyword: str) -> bool:
    """Whether Table E.1-1 removes the attribute (X) and only an IOD's Type keeps it: where its
    Type is not known (an unknown SOP class, a path the IOD does not define), it is removed
    (E.1.1: an attribute outside its IOD "may be removed")."""
    return keyword in _removed_keywords()


@cache
def _removed_keywords() -> frozenset[str]:
    return frozenset(_iod_types()["removed_unless_required"])


def condition_of(keyword: str) -> str | None:
    """The condition of a 1C or 2C Type the engine evaluates ('animal'), or None."""
    return _iod_types()["conditions"].get(keyword)


@cache
def _unlisted_types() -> tuple[frozenset[str], dict[str, dict[str, dict[str, str]]]]:
    data = _read("unlisted_types.json")
    return frozenset(data["keywords"]), data


@functools.lru_cache(maxsize=256)
def _iod_unlisted(iod: str) -> dict[str, dict[str, str]]:
    """keyword -> enclosing sequence -> Type, over the modules of one IOD (the most
    demanding Type where modules differ)."""
    _, data = _unlisted_types()
    types: dict[str, dict[str, str]] = {}
    for module in data["iods"].get(iod, ()):
        for keyword, by_parent in data["modules"][module].items():
            known = types.setdefault(keyword, {})
            for parent, kind in by_parent.items():
                if parent not in known or kind < known[parent]:
                    known[parent] = kind
    return types


def _unlisted_type(iod: str, keyword: str, path: tuple[str, ...]) -> str | None:
    """attribute_type for an attribute Table E.1-1 does not list (the unlisted policy's text,
    dates and times), known by its enclosing sequence rather than its whole path: '' where the
    IOD does not define it in that sequence (or at the top level)."""
    keywords, _ = _unlisted_types()
    if keyword not in keywords:
        return None
    return _iod_unlisted(iod).get(keyword, {}).get(path[-1] if path else "", "")


@cache
def _iod_modules() -> dict:
    return _read("iod_modules.json")


def iod_name(iod: str) -> str:
    """'ct-image' -> 'CT Image'."""
    entry = _iod_modules()["iods"].get(iod)
    return entry["name"] if entry else iod


def defining_module(iod: str, keyword: str, path: tuple[str, ...]) -> str | None:
    """The name of the first module of an IOD that defines an attribute at a sequence path
    (the one attribute_type's Type comes from), for explanations; None if unknown."""
    data = _iod_modules()
    joined = "/".join(path)
    parent = path[-1] if path else ""
    keywords, unlisted = _unlisted_types()
    for module in data["iods"].get(iod, {}).get("modules", ()):
        entry = data["modules"].get(module)
        if entry is None:
            continue
        if joined in entry["attributes"].get(keyword, ()) or (
                keyword in keywords
                and parent in unlisted["modules"].get(module, {}).get(keyword, {})):
            return entry["name"]
    return None


@cache
def _table_rows() -> dict[str, dict]:
    return {row["tag"]: row for row in _read("table_e1_1.json")["rows"]}


def table_row(tag: int) -> dict | None:
    """The row of PS3.15 Table E.1-1 for a public tag ('tag' as '00100010' or '60xx3000',
    'name', and the action code of 'basic' and of each option column that has one), or None."""
    rows = _table_rows()
    key = f"{tag:08X}"
    if key in rows:
        return rows[key]
    return next((row for pattern, row in rows.items() if "x" in pattern and all(
        p in ("x", k) for p, k in zip(pattern, key, strict=True))), None)

"""Generate the project's standard data and built-in profiles from the DICOM Standard.

Two stages, so a new edition of PS3.15 is a regeneration, not a rewrite:

1. ``extract``: read the tables in ``../shared/standard`` (PS3.15 Table E.1-1, Table E.3.10-1,
   CID 7050, the PS3.6 dictionary, the IOD module tables) and write the compact facts the
   project needs to ``deid/standard/data/``.
2. ``render``: write ``profiles/*.yaml`` from ``deid/standard/data/`` alone.

Usage::

    python -m deid.standard.generate              # both stages
    python -m deid.standard.generate --render-only
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / "data"
REVIEWED_FILE = Path(__file__).resolve().parent / "unlisted.yaml"
PROFILES_DIR = PROJECT_ROOT / "profiles"
DEFAULT_SOURCE = PROJECT_ROOT.parent / "shared" / "standard"

EDITION = "2026c"

# Table E.1-1 option columns, in the order of PS3.15 E.3, with the profile each becomes.
OPTION_COLUMNS: dict[str, str] = {
    "retain_safe_private": "retain-safe-private",
    "retain_uids": "retain-uids",
    "retain_device_identity": "retain-device-identity",
    "retain_institution_identity": "retain-institution-identity",
    "retain_patient_characteristics": "retain-patient-characteristics",
    "retain_long_full_dates": "retain-long-full-dates",
    "retain_long_modified_dates": "retain-long-modified-dates",
    "clean_descriptors": "clean-descriptors",
    "clean_structured_content": "clean-structured-content",
    "clean_graphics": "clean-graphics",
}

# Profile name -> (PS3.15 section, CID 7050 code value).
PROFILE_SECTIONS: dict[str, tuple[str, str]] = {
    "basic": ("E.2", "113100"),
    "clean-pixel-data": ("E.3.1", "113101"),
    "clean-graphics": ("E.3.3", "113103"),
    "clean-structured-content": ("E.3.4", "113104"),
    "clean-descriptors": ("E.3.5", "113105"),
    "retain-long-full-dates": ("E.3.6", "113106"),
    "retain-long-modified-dates": ("E.3.6", "113107"),
    "retain-patient-characteristics": ("E.3.7", "113108"),
    "retain-device-identity": ("E.3.8", "113109"),
    "retain-uids": ("E.3.9", "113110"),
    "retain-safe-private": ("E.3.10", "113111"),
    "retain-institution-identity": ("E.3.11", "113112"),
}

COMPOUND_CODES = {"Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
DATE_TIME_VRS = {"DA", "DT", "TM"}
PRIVATE_ROW = "(gggg,eeee) where gggg is odd"

# The unlisted-attribute policy of basic (PS3.15 E.1.1): what happens, by PS3.5 VR, to a public
# attribute that neither Table E.1-1 nor a reviewed exception (unlisted.yaml) names. Text is
# removed unless the attribute's Type in the instance's IOD needs it (2: emptied, 1: dummied).
FREE_TEXT_VRS = ("AE", "LO", "SH", "ST", "LT", "UT", "UC", "UR")
UNLISTED_POLICY: dict[str, tuple[str, str]] = {
    **{vr: ("X/Z/D", "free text: may hold anything, so removed (emptied or dummied where the "
                     "IOD's Type needs it)") for vr in FREE_TEXT_VRS},
    **{vr: ("X/Z/D", "dates and times: removed as Table E.1-1's are (the date options "
                     "override)") for vr in sorted(DATE_TIME_VRS)},
    "PN": ("X", "a person's name"),
    "UI": ("U", "a UID: replaced unless PS3.6 Annex A defines it"),
    "CS": ("C", "a coded value: kept, cleaned of the instance's names and IDs (Image Type's "
                "fourth value is free for the vendor)"),
    "unknown": ("X", "a public tag the PS3.6 dictionary does not hold, whatever its VR: "
                     "nothing says what it holds"),
}
# Every other VR (numbers, AS, AT, binary data, SQ whose items the profile walks) is kept.
DATE_OPTIONS = {"retain_long_modified_dates": "shift", "retain_long_full_dates": "K"}
# Conditional Types (1C, 2C) of attributes Table E.1-1 removes whose condition the engine can
# evaluate on the instance: PS3.3 C.7.1.1, Patient Module, "Required if the patient is an
# animal". Another condition is not evaluated: the attribute is removed, as the table says.
REQUIRED_CONDITIONS = {"ResponsiblePerson": "animal", "ResponsibleOrganization": "animal"}
# References (PS3.15 Table E.1-1a, X/Z/U*): the table lets a reference sequence be kept with
# every UID in it replaced, which carries no identity once they are; keeping them keeps a
# collection linked (a SEG on its source series, measurements on their images).
KEEP_REFERENCES = "U"
POLICY_TYPE_VRS = set(FREE_TEXT_VRS) | DATE_TIME_VRS  # policy resolved by the IOD's Type


def _load(path: Path) -> object:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def _tag_key(tag: str) -> str:
    """'(0008,0050)' -> '00080050'; repeating groups keep their 'x' placeholders."""
    return tag.strip("()").replace(",", "").upper().replace("X", "x")


# --- stage 1: extract -------------------------------------------------------------------------

def extract(source: Path, out: Path = DATA_DIR) -> None:
    """Copy the facts the project needs from the standard's tables into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    dictionary_rows = _load(source / "data_dictionary_ps36_2026c.json")
    dictionary = {
        _tag_key(row["tag"]): [row["keyword"], "/".join(row["vr"]), row["vm"], row["retired"]]
        for row in dictionary_rows
        if row["keyword"]
    }
    _write_json(out / "dictionary.json", {"edition": EDITION, "source": "PS3.6 Table 6-1",
                                          "elements": dictionary})

    table = []
    for row in _load(source / "ps315_table_e1_1.json"):
        key = "private" if row["tag"] == PRIVATE_ROW else _tag_key(row["tag"])
        entry = {"tag": key, "name": row["name"], "retired": row["retired"],
                 "in_std_comp_iod": row["in_std_comp_iod"], "basic": row["basic"]}
        entry.update({col: row[col] for col in OPTION_COLUMNS if row[col]})
        table.append(entry)
    _write_json(out / "table_e1_1.json", {"edition": EDITION, "source": "PS3.15 Table E.1-1",
                                          "rows": table})

    safe = [
        {"creator": row["private_creator"], "group": row["group"][2:].upper(),
         "offset": row["element_offset"][2:].upper(), "vr": row["vr"], "meaning": row["meaning"]}
        for row in _load(source / "safe_private_attributes.json")
    ]
    _write_json(out / "safe_private.json", {"edition": EDITION, "source": "PS3.15 Table E.3.10-1",
                                            "attributes": safe})

    codes = {row["code_value"]: {"scheme": row["coding_scheme"], "meaning": row["code_meaning"]}
             for row in _load(source / "cid7050.json")}
    _write_json(out / "cid7050.json", {"source": "PS3.16 CID 7050", "codes": codes})

    iod_dir = source / "iod_modules" / "highdicom_2026b"
    _extract_iod_types(iod_dir, table, dictionary, out)
    _extract_unlisted_types(iod_dir, table, dictionary, out)
    _extract_iod_modules(iod_dir, source / "iod_modules" / "innolitics_2024b", out)


def _extract_iod_types(iod_dir: Path, table: list[dict], dictionary: dict[str, list],
                       out: Path) -> None:
    """Per IOD, the Type of every attribute whose Table E.1-1 action depends on it.

    Keys are the attribute keyword, then the path of enclosing sequence keywords joined by '/'
    ('' at the top level). Only attributes with a compound action code in some column matter,
    those an option cleans (C), and those below.

    Attributes the table removes (X) are kept only where an IOD requires them (Type 1 or 2,
    or 1C or 2C with a condition in REQUIRED_CONDITIONS, whose C is kept): the rest of their
    Types would only say X. E.1: the de-identifier must not "negatively affect the integrity
    of the Information Object Definition".
    """
    compound = {
        dictionary[row["tag"]][0] for row in table
        if row["tag"] in dictionary
        and any(row.get(col) in COMPOUND_CODES for col in ["basic", *OPTION_COLUMNS])
    }
    removed = {
        dictionary[row["tag"]][0] for row in table
        if row["tag"] in dictionary and "x" not in row["tag"]  # an overlay goes whole
        and any(row.get(col) == "X" for col in ["basic", *OPTION_COLUMNS])
    } - compound
    # Text an option cleans (C) gets a dummy where cleaning empties it and its Type is 1.
    cleaned = {
        dictionary[row["tag"]][0] for row in table
        if row["tag"] in dictionary and "x" not in row["tag"]
        and dictionary[row["tag"]][1] in FREE_TEXT_VRS
        and any(row.get(col) == "C" for col in OPTION_COLUMNS)
    } - compound - removed
    iod_modules = _load(iod_dir / "iod_module_map.json")
    module_attributes = _load(iod_dir / "module_attribute_map.json")
    iods: dict[str, dict[str, dict[str, str]]] = {}
    for iod, modules in sorted(iod_modules.items()):
        types: dict[str, dict[str, str]] = {}
        for module in modules:
            for attribute in module_attributes.get(module["key"], []):
                keyword = attribute["keyword"]
                if keyword in compound:
                    kind = attribute["type"].rstrip("C")
                elif keyword in cleaned and attribute["type"].startswith("1"):
                    kind = "1"  # only where a value is required: the rest stays as cleaned
                elif keyword in removed and _required(keyword, attribute["type"]):
                    kind = attribute["type"]
                else:
                    continue
                path = "/".join(attribute["path"])
                # A module the IOD uses conditionally or optionally cannot lower a Type
                # required elsewhere: keep the most demanding one ('1' < '1C' < '2' < '2C').
                known = types.setdefault(keyword, {}).get(path)
                if known is None or kind < known:
                    types[keyword][path] = kind
        iods[iod] = {k: dict(sorted(v.items())) for k, v in sorted(types.items())}
    required = sorted({k for types in iods.values() for k in types} & removed)
    _write_json(out / "iod_types.json", {
        "source": "highdicom 2026b IOD and module tables (MIT licence)",
        "keywords": sorted(compound | cleaned | set(required)),
        "removed_unless_required": required,
        "conditions": {k: REQUIRED_CONDITIONS[k] for k in required if k in REQUIRED_CONDITIONS},
        "sop_classes": _load(iod_dir / "sop_class_iod_map.json"),
        "iods": iods,
    })


ACRONYMS = {"ct", "mr", "pet", "pt", "us", "rt", "sr", "xa", "xrf", "dx", "ecg", "sc", "vl",
            "oct", "iod", "cr", "nm", "ep", "ivus", "ivoct", "kos", "mpr", "cad", "dicos", "ps",
            "3d", "2d", "hl7", "icc", "x"}


def _title(key: str) -> str:
    """'ct-image' -> 'CT Image', for the few keys the innolitics tables do not name."""
    return " ".join(w.upper() if w in ACRONYMS else w.capitalize() for w in key.split("-"))


def _extract_iod_modules(iod_dir: Path, names_dir: Path, out: Path) -> None:
    """What `deid explain` says of a compound code: the IOD's name and the module that gives
    the attribute its Type. Per IOD its name and modules (in the IOD's order); per module its
    name and, of the attributes in iod_types.json, the sequence paths where it defines them."""
    keywords = set(_load(out / "iod_types.json")["keywords"])
    names = {row["id"]: row["name"] for name in ("ciods.json", "modules.json")
             for row in _load(names_dir / name)}
    iods = {iod: {"name": names.get(iod) or _title(iod),
                  "modules": [m["key"] for m in modules]}
            for iod, modules in sorted(_load(iod_dir / "iod_module_map.json").items())}
    modules = {}
    for module, attributes in sorted(_load(iod_dir / "module_attribute_map.json").items()):
        held: dict[str, list[str]] = {}
        for attribute in attributes:
            if attribute["keyword"] in keywords:
                paths = held.setdefault(attribute["keyword"], [])
                path = "/".join(attribute["path"])
                if path not in paths:
                    paths.append(path)
        modules[module] = {"name": names.get(module) or _title(module),
                           "attributes": dict(sorted(held.items()))}
    _write_json(out / "iod_modules.json", {
        "source": "highdicom 2026b IOD and module tables, names from innolitics/dicom-standard "
                  "2024b (MIT licences)",
        "iods": iods,
        "modules": modules,
    })


def _required(keyword: str, kind: str) -> bool:
    """Whether a Type makes an attribute required: 1 and 2, or 1C and 2C whose condition the
    engine evaluates."""
    return kind in ("1", "2") or (kind in ("1C", "2C") and keyword in REQUIRED_CONDITIONS)


def _extract_unlisted_types(iod_dir: Path, table: list[dict], dictionary: dict[str, list],
                            out: Path) -> None:
    """Per module, the Type of every attribute the unlisted policy resolves by Type (text,
    dates and times Table E.1-1 does not list), keyed by the enclosing sequence's keyword ('' at
    the top level); and the modules of each IOD. By module and by enclosing sequence, not by
    full path per IOD, to stay small: where paths differ, the most demanding Type is kept, which
    can only dummy where removing would have done."""
    listed = {row["tag"] for row in table}
    keywords = {entry[0] for tag, entry in dictionary.items()
                if tag not in listed and "x" not in tag
                and set(entry[1].split("/")) & POLICY_TYPE_VRS}
    modules: dict[str, dict[str, dict[str, str]]] = {}
    for module, attributes in sorted(_load(iod_dir / "module_attribute_map.json").items()):
        types: dict[str, dict[str, str]] = {}
        for attribute in attributes:
            keyword = attribute["keyword"]
            if keyword not in keywords:
                continue
            parent = attribute["path"][-1] if attribute["path"] else ""
            kind = str(attribute["type"]).rstrip("C")
            if kind not in ("1", "2", "3"):
                continue  # a module of messages, not of stored instances: no Type
            known = types.setdefault(keyword, {}).get(parent)
            if known is None or kind < known:
                types[keyword][parent] = kind
        if types:
            modules[module] = {k: dict(sorted(v.items())) for k, v in sorted(types.items())}
    iods = {iod: sorted({m["key"] for m in mods} & set(modules))
            for iod, mods in sorted(_load(iod_dir / "iod_module_map.json").items())}
    _write_json(out / "unlisted_types.json", {
        "source": "highdicom 2026b IOD and module tables (MIT licence)",
        "keywords": sorted(keywords),
        "iods": iods,
        "modules": modules,
    })


def reviewed_exceptions(dictionary: dict[str, list], table: list[dict],
                        path: Path = REVIEWED_FILE) -> list[tuple[str, str, str]]:
    """(keyword, action, reason) of the reviewed exceptions to the unlisted policy, checked:
    each a dictionary keyword Table E.1-1 does not list, and none kept that is retired."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_keyword = {entry[0]: (tag, entry) for tag, entry in dictionary.items()}
    listed = {row["tag"] for row in table}
    out = []
    for section, action in (("keep", "K"), ("clean", "clean"), ("remove", "X")):
        for item in data.get(section, []):
            if set(item) != {"attribute", "reason"}:
                raise ValueError(f"{path.name}: {item} needs exactly 'attribute' and 'reason'")
            keyword, reason = item["attribute"], item["reason"]
            if keyword not in by_keyword:
                raise ValueError(f"{path.name}: {keyword} is not in the data dictionary")
            tag, entry = by_keyword[keyword]
            if tag in listed:
                raise ValueError(f"{path.name}: Table E.1-1 lists {keyword}; it decides")
            if action != "X" and entry[3]:
                raise ValueError(f"{path.name}: {keyword} is retired; it is not kept")
            out.append((keyword, action, reason))
    return out


# --- stage 2: render --------------------------------------------------------------------------

HEADER = """\
# {title}
# PS3.15 {edition}, {section}. Generated by `python -m deid.standard.generate` from
# deid/standard/data/ (the standard's own tables); do not edit: write a profile that extends it.
#
# Action codes, PS3.15 Table E.1-1a: X remove; Z empty; D dummy value; K keep; C clean;
# U replace UID (keyed hash). Z/D, X/Z, X/D, X/Z/D, X/Z/U*: the first, unless the attribute's
# Type in the instance's IOD requires the next (Type 3 -> X, 2 -> Z, 1 -> D or U).
# Where the table leaves a choice or an IOD requires what it removes, the comment says
# what was chosen: X/Z/U* references are kept with their UIDs replaced (U); an X that some
# IOD requires is X/Z/D, removed wherever the instance's IOD does not require it.
"""

DESCRIPTIONS = {
    "basic": "Removes or replaces the identity and demographics of the patient, of responsible "
             "parties and personnel, organizations, UIDs, dates and times, and all private "
             "attributes (PS3.15 E.2).",
    "clean-pixel-data": "Instances whose pixels may carry burned-in text are accepted only when "
                        "a pixel-cleaning rule covers them; the rest stay rejected (E.3.1).",
    "clean-graphics": "Keeps graphic annotations and curve text, cleaned of the instance's "
                      "identifying values; overlay bitmaps and curve data, which cannot be read "
                      "for text, are still removed (E.3.3).",
    "clean-structured-content": "Keeps SR content, acquisition context and specimen preparation "
                                "items, with the profile applied inside and text cleaned of the "
                                "instance's identifying values (E.3.4).",
    "clean-descriptors": "Keeps descriptions and comments, cleaned of the instance's identifying "
                         "values (E.3.5).",
    "retain-long-full-dates": "Keeps dates and times unchanged (E.3.6).",
    "retain-long-modified-dates": "Shifts dates by a per-patient keyed offset in whole days, so "
                                  "intervals survive; times of day are kept (E.3.6).",
    "retain-patient-characteristics": "Keeps age, sex, size, weight and other physical "
                                      "characteristics; free-text ones are cleaned (E.3.7).",
    "retain-device-identity": "Keeps device identity: serial numbers, station names, device "
                              "UIDs; AE titles are cleaned (E.3.8).",
    "retain-uids": "Keeps all UIDs unchanged (E.3.9).",
    "retain-safe-private": "Keeps the private attributes of Table E.3.10-1, matched by private "
                           "creator and element offset in any block; removes all others "
                           "(E.3.10).",
    "retain-institution-identity": "Keeps the names and addresses of institutions and "
                                   "departments (E.3.11).",
}


def _flow(mapping: dict) -> str:
    return yaml.safe_dump(mapping, default_flow_style=True, width=10**6, sort_keys=False).strip()


def _rule_line(selector: dict, action: str, comment: str) -> str:
    return f"- {_flow({**selector, 'action': action})}  # {comment}"


def _attribute(tag: str, dictionary: dict[str, list]) -> str:
    entry = dictionary.get(tag)
    return entry[0] if entry else f"({tag[:4]},{tag[4:]})"


def _comment(row: dict) -> str:
    tag = row["tag"]
    retired = ", retired" if row["retired"] else ""
    return f"({tag[:4]},{tag[4:]}) {row['name']}{retired}"


def _option_action(column: str, code: str, vr: str) -> str:
    """The concrete action of an option's code; C depends on the option (PS3.15 E.3)."""
    if code != "C":
        return code
    if column == "clean_graphics" and vr in ("OB/OW", "OB", "OW"):
        return "K"  # an overlay's bitmap cannot be cleaned as text: kept with its overlay
    if column == "retain_long_modified_dates" and vr in DATE_TIME_VRS:
        return "shift"  # E.3.6: modified dates, by a per-patient offset
    return "clean"


def _table_rule(column: str, row: dict, dictionary: dict[str, list],
                required: dict[str, str]) -> str | None:
    """The rule line of one row of Table E.1-1 in one column ('basic' or an option's), or None
    where the column says nothing. Where the table leaves a choice, or an IOD needs what it
    removes, the action chosen and why are in the comment."""
    keyword = _attribute(row["tag"], dictionary)
    vr = dictionary.get(row["tag"], ["", ""])[1]
    code, why = row.get(column, ""), ""
    if not code and column == "retain_uids" and (row["basic"] == "U" or vr == "UI"):
        # E.3.9: "all UIDs shall be retained"; the column leaves a few blank (UID (0040,A124)
        # of SR content items, Digital Signature UID), which would leave an SR pointing at a
        # replaced twin of an image's kept UID.
        code, why = "K", "blank in this column: kept, as E.3.9 retains all UIDs"
    if not code:
        return None
    action = code if column == "basic" else _option_action(column, code, vr)
    if code == "X/Z/U*":
        action, why = KEEP_REFERENCES, "table X/Z/U*: U, kept with its UIDs replaced"
    elif keyword == "TimezoneOffsetFromUTC" and column == "retain_long_modified_dates":
        # Shifting by whole days keeps times of day, but the offset says where they were
        # taken: cleaned as Basic does, removed unless the IOD needs a value.
        action, why = "X/Z/D", "table C: removed unless the IOD requires it"
    elif code == "X" and keyword in required:
        condition = required[keyword] and f", or 2C when the patient is an {required[keyword]}"
        action = "X/Z/D"
        why = f"table X: removed unless the IOD requires it (Type 1 or 2{condition})"
    comment = _comment(row) + (f"; {why}" if why else "")
    return _rule_line({"attribute": keyword}, action, comment)


def _unlisted_block(actions: dict[str, str], reasons: dict[str, str]) -> str:
    """The 'unlisted' setting, one line per VR with its reason."""
    lines = ["unlisted:  # public attributes no rule names, by VR ('unknown': not in PS3.6)"]
    lines += [f"  {vr}: {_flow({'a': action})[4:-1]}  # {reasons[vr]}"
              for vr, action in actions.items()]
    return "\n".join(lines) + "\n"


def _graphics_groups(dictionary: dict[str, list]) -> list[str]:
    """Clean Graphics (E.3.3) keeps overlays and curves whole, their text cleaned: the bitmap
    and the curve data, which cannot be read as text, are kept with them (basic removes the
    whole overlay and the whole curve; the Clean Pixel Data Option blanks an overlay where it
    blanks the pixels)."""
    lines = [
        "# Not in Table E.1-1: the rest of each overlay, kept with its Overlay Data, text cleaned.",
        _rule_line({"attribute": "(60xx,xxxx)"}, "K", "(60xx,xxxx) Overlay Plane module"),
        _rule_line({"attribute": "(50xx,3000)"}, "K", "(50xx,3000) Curve Data, retired: kept "
                   "whole with its curve (the curve's text is cleaned by the row above)"),
    ]
    for key, (keyword, vr, _, retired) in dictionary.items():
        if key.startswith("60xx") and vr in FREE_TEXT_VRS and key != "60xx4000":
            comment = f"({key[:4]},{key[4:]}) {keyword}{', retired' if retired else ''}"
            lines.append(_rule_line({"attribute": keyword}, "clean", comment))
    return lines


def _document(name: str, settings: dict, rules: Iterable[str], codes: dict, title: str,
              unlisted: str | None = None) -> str:
    section, code = PROFILE_SECTIONS[name]
    head = HEADER.format(title=title, edition=EDITION, section=section)
    doc = {
        "name": name,
        "title": title,
        "description": DESCRIPTIONS[name],
        "edition": EDITION,
        "section": section,
        **settings,
        "method_code": {"value": code, "scheme": codes[code]["scheme"],
                        "meaning": codes[code]["meaning"]},
    }
    body = yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True) + (unlisted or "")
    lines = list(rules)
    if lines:
        return head + body + "rules:\n" + "\n".join(lines) + "\n"
    return head + body + "rules: []\n"


def render(data: Path = DATA_DIR, out: Path = PROFILES_DIR) -> dict[str, str]:
    """Write the built-in profiles to ``out`` and return them by file name."""
    dictionary = _load(data / "dictionary.json")["elements"]
    table = _load(data / "table_e1_1.json")["rows"]
    codes = _load(data / "cid7050.json")["codes"]
    safe = _load(data / "safe_private.json")["attributes"]
    texts: dict[str, str] = {}

    types = _load(data / "iod_types.json")
    required = {k: types["conditions"].get(k, "") for k in types["removed_unless_required"]}
    basic_rules = [_table_rule("basic", row, dictionary, required)
                   for row in table if row["tag"] != "private"]
    basic_rules += [
        "# Not in Table E.1-1. An overlay goes whole with its Overlay Data: a half overlay is "
        "invalid, and its",
        "# description and label are text (PS3.3 C.9.2).",
        _rule_line({"attribute": "(60xx,xxxx)"}, "X", "(60xx,xxxx) Overlay Plane module"),
        "# Not in Table E.1-1: the reviewed exceptions to the unlisted policy above "
        "(deid/standard/unlisted.yaml).",
        *(_rule_line({"attribute": keyword}, action, f"reviewed: {reason}")
          for keyword, action, reason in reviewed_exceptions(dictionary, table)),
    ]
    texts["basic.yaml"] = _document(
        "basic",
        {"private": "remove", "burned_in": "reject", "temporal": "REMOVED"},
        basic_rules, codes, "Basic Application Level Confidentiality Profile",
        unlisted=_unlisted_block({vr: action for vr, (action, _) in UNLISTED_POLICY.items()},
                                 {vr: why for vr, (_, why) in UNLISTED_POLICY.items()}))

    for column, name in OPTION_COLUMNS.items():
        settings: dict = {"extends": ["basic"]}
        unlisted = None
        if column == "retain_uids":
            unlisted = _unlisted_block({"UI": "K"}, {"UI": "every UID, listed or not (E.3.9)"})
        elif column in DATE_OPTIONS:
            unlisted = _unlisted_block(
                dict.fromkeys(sorted(DATE_TIME_VRS), DATE_OPTIONS[column]),
                dict.fromkeys(sorted(DATE_TIME_VRS), "dates and times no rule names, as the "
                              "table's (E.3.6)"))
        if column == "retain_long_full_dates":
            settings["temporal"] = "UNMODIFIED"
        elif column == "retain_long_modified_dates":
            settings["temporal"] = "MODIFIED"
        if column == "retain_safe_private":
            # Kept only with the VR the table gives (an element of another VR under the same
            # tag is not the one it calls safe); the table gives none for a few.
            rules = [
                _rule_line({"private": {"creator": a["creator"],
                                        "tag": f"({a['group']},xx{a['offset']})"},
                            **({"vr": a["vr"]} if a["vr"] else {})},
                           "K", f"{a['vr']} {a['meaning']}")
                for a in safe
            ]
        else:
            rules = [line for row in table if row["tag"] != "private"
                     and (line := _table_rule(column, row, dictionary, required))]
            if column == "clean_graphics":
                rules += _graphics_groups(dictionary)
        title = codes[PROFILE_SECTIONS[name][1]]["meaning"]
        texts[f"{name}.yaml"] = _document(name, settings, rules, codes, title, unlisted=unlisted)

    texts["clean-pixel-data.yaml"] = _document(
        "clean-pixel-data", {"extends": ["basic"], "burned_in": "clean"}, [], codes,
        codes["113101"]["meaning"])

    out.mkdir(parents=True, exist_ok=True)
    for file_name, text in texts.items():
        (out / file_name).write_text(text, encoding="utf-8")
    return texts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder with the standard's tables (default: ../shared/standard)")
    parser.add_argument("--render-only", action="store_true",
                        help="only write profiles/ from deid/standard/data/")
    args = parser.parse_args(argv)
    if not args.render_only:
        extract(args.source)
    for name in sorted(render()):
        print(f"wrote profiles/{name}")


if __name__ == "__main__":
    main()

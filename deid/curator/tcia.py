"""Generate the TCIA-style example profile from TCIA's private tag knowledge base, and the
patient pseudonym option it composes.

A generator that renders profiles sits above the profile model (it loads and lints what it
writes), so it lives here, not beside the standard's data in ``deid/standard/``.

Two stages, like ``deid.standard.generate``, so a new release of the knowledge base is a
regeneration and a reviewable diff:

1. ``extract``: read the knowledge base CSV (``../shared/reference/``) and write the facts the
   profile needs, parsed and de-duplicated, to ``deid/standard/data/tcia_private.json``.
2. ``render``: write ``profiles/tcia.yaml`` from that file and the built-in profiles it extends,
   and ``profiles/patient-pseudonym.yaml``.

The knowledge base gives a disposition per private element signature (private creator, group,
element offset, and the sequences it is nested in): ``k`` keep -> K, ``d`` delete -> X, ``h``
hash -> hash (U when the element is a UID), ``o`` offset a date -> shift. Where that cannot be
applied as written, the element is removed (X, fail closed) and the header of the profile counts
why: the VR cannot hold the action's result, the disposition is blank, ``na`` or ``oi`` (offset
an integer, which no action does), or two rows for the same element disagree (often a typed row
'k' and a UN row 'd'; for an element PS3.15 Table E.3.10-1 lists as safe, the Standard then
decides, K).

Usage::

    python -m deid.curator.tcia                 # both stages
    python -m deid.curator.tcia --render-only
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from deid import standard
from deid.curator.composition import Composition
from deid.curator.lint import analyse
from deid.profile.loader import ACTION_VRS, load_documents

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = PROJECT_ROOT / "deid" / "standard" / "data" / "tcia_private.json"
PROFILE_FILE = PROJECT_ROOT / "profiles" / "tcia.yaml"
PSEUDONYM_FILE = PROJECT_ROOT / "profiles" / "patient-pseudonym.yaml"
KB_NAME = "tcia_private_tag_kb_2024-02-01.csv"
DEFAULT_SOURCE = PROJECT_ROOT.parent / "shared" / "reference" / KB_NAME

# What the TCIA profile composes, in order: PS3.15 options as TCIA applies them.
EXTENDS = ["basic", "patient-pseudonym", "retain-long-modified-dates",
           "retain-patient-characteristics", "retain-device-identity", "retain-safe-private",
           "clean-descriptors"]

# One segment of a signature: '(0008,1115)' or '(0019,"GEMS_ACQU_01",23)'; the knowledge base
# quotes creators inconsistently (opening quote often missing), so quotes are optional.
_SEGMENT = re.compile(r'\(([0-9A-Fa-f]{4}),(?:([0-9A-Fa-f]{4})|"?(.*?)"?,([0-9A-Fa-f]{2}))\)'
                      r"(?:\[<\d+>\])?")
UNNAMED_BLOCK = "Unnamed Private Block"
KNOWN_DISPOSITIONS = ("k", "d", "h", "o", "oi", "na", "")

# How protective an action is, for rows that disagree: removing beats transforming beats
# keeping.
SEVERITY = {"K": 0, "C": 1, "shift": 1, "hash": 1, "U": 1, "X": 2}
FREE_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "UR"}


# --- stage 1: extract -------------------------------------------------------------------------

def parse_signature(text: str) -> list[dict] | None:
    """'(0008,1115)[<0>](0019,"GEMS_ACQU_01",23)' -> [{'tag': '00081115'}, {'creator':
    'GEMS_ACQU_01', 'group': '0019', 'offset': '23'}]; None if it does not parse."""
    segments, position = [], 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if not match:
            return None
        group, element, creator, offset = match.groups()
        if element is not None:
            segments.append({"tag": (group + element).upper()})
        else:
            segments.append({"creator": creator.strip(), "group": group.upper(),
                             "offset": offset.upper()})
        position = match.end()
    return segments or None


def extract(source: Path = DEFAULT_SOURCE, out: Path = DATA_FILE) -> dict:
    """Parse the knowledge base and write the entries the profile is rendered from."""
    with source.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    skipped: Counter[str] = Counter()
    normalized: Counter[str] = Counter()
    merged: dict[tuple, dict] = {}
    for row in rows:
        segments = parse_signature(row["element_sig_pattern"].strip())
        if segments is None:
            skipped["signature that does not parse"] += 1
            continue
        *path, leaf = segments
        if "tag" in leaf:
            skipped["public attribute inside a private sequence (public rules apply)"] += 1
            continue
        if not leaf["creator"]:
            skipped["no private creator (the engine removes such elements)"] += 1
            continue
        if leaf["creator"].startswith(UNNAMED_BLOCK):
            skipped[f"'{UNNAMED_BLOCK} - NN', a block without a creator in the files the "
                    "knowledge base was built from (the engine removes such elements)"] += 1
            continue
        raw = row["private_disposition"]
        disposition = raw.strip().lower()
        if disposition != raw:
            normalized[repr(raw)] += 1
        if disposition not in KNOWN_DISPOSITIONS:
            skipped["unknown disposition"] += 1
            continue
        names = row["tag_name"].split(":")
        name = " ".join(":".join(names[len(path):]).split()) or "Unknown"
        key = (leaf["creator"], leaf["group"], leaf["offset"], json.dumps(path), disposition)
        entry = merged.setdefault(key, {**leaf, "path": path, "disposition": disposition,
                                        "vr": [], "name": name})
        vr = row["vr"].strip().upper()
        if vr and vr not in entry["vr"]:
            entry["vr"] = sorted([*entry["vr"], vr])
        if entry["name"] == "Unknown" and name != "Unknown":
            entry["name"] = name
    entries = [merged[key] for key in sorted(merged)]
    data = {
        "source": f"The Cancer Imaging Archive's private tag knowledge base ({KB_NAME}, from "
                  "MIC-DKFZ/miccai2024_midi-b-submission, Apache-2.0)",
        "rows": len(rows),
        "skipped": dict(sorted(skipped.items())),
        "normalized_dispositions": dict(sorted(normalized.items())),
        "fields": FIELDS,
        "entries": entries,
    }
    _write(out, data)
    return json.loads(out.read_text(encoding="utf-8"))


FIELDS = ["creator", "group", "offset", "path", "disposition", "vr", "name"]
_PRIVATE_SEGMENT = re.compile(r"^(.*) \(([0-9A-F]{4}),xx([0-9A-F]{2})\)$")


def _segment_text(segment: dict) -> str:
    """A path segment as the profile writes selectors: '(0008,1115)' or 'GEIIS (0009,xx10)'."""
    if "tag" in segment:
        return f"({segment['tag'][:4]},{segment['tag'][4:]})"
    return f"{segment['creator']} ({segment['group']},xx{segment['offset']})"


def _segment(text: str) -> dict:
    match = _PRIVATE_SEGMENT.match(text)
    if match:
        return {"creator": match.group(1), "group": match.group(2), "offset": match.group(3)}
    return {"tag": text[1:5] + text[6:10]}


def entries_of(data: dict) -> list[dict]:
    """The entries of tcia_private.json as mappings, paths as segment mappings."""
    out = []
    for row in data["entries"]:
        entry = dict(zip(data["fields"], row, strict=True))
        entry["path"] = [_segment(s) for s in entry["path"]]
        out.append(entry)
    return out


def _write(path: Path, data: dict) -> None:
    """JSON with one entry per line, so a new release of the knowledge base diffs by entry."""
    head = {k: v for k, v in data.items() if k != "entries"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    lines = [json.dumps([e[f] if f != "path" else [_segment_text(s) for s in e["path"]]
                         for f in FIELDS], ensure_ascii=False) for e in data["entries"]]
    text += ',\n "entries": [\n' + ",\n".join(lines) + "\n ]\n}\n"
    path.write_text(text, encoding="utf-8")


# --- stage 2: render --------------------------------------------------------------------------

@dataclass
class PrivateRule:
    """One rule of the profile, with the knowledge base entries it comes from."""

    creator: str
    group: str
    offset: str
    within: str | None
    action: str
    vrs: list[str]
    comment: str
    reason: str | None  # why the action is not the disposition's plain translation


def _action(disposition: str, vrs: list[str]) -> tuple[str, str | None]:
    """The action of one entry, and why it is X when the disposition says otherwise."""
    shown = "/".join(vrs) or "unknown"
    if disposition == "k":
        if "UI" in vrs and set(vrs) <= {"UI", "UN"}:
            # An original UID kept would link the release back to the archive (PS3.15 E.1-1
            # replaces UIDs; E.3.9 keeps them only under Retain UIDs): replaced, as public ones.
            return "U", None
        if set(vrs) & FREE_TEXT_VRS:
            # Free text may hold anything: cleaned of the instance's identifying values rather
            # than kept verbatim (PS3.15 E.3.10 keeps only what is known to be safe).
            return "C", None
        return "K", None
    if disposition == "d":
        return "X", None
    if disposition == "h":
        if vrs and set(vrs) <= {"UI"}:
            return "U", None
        if set(vrs) & ACTION_VRS["hash"]:
            return "hash", None
        return "X", f"h, but a {shown} value cannot be hashed"
    if disposition == "o":
        if set(vrs) & ACTION_VRS["shift"]:
            return "shift", None
        return "X", f"o, but {shown} is not a date VR"
    if disposition == "oi":
        return "X", "oi (offset an integer), which no action does"
    return "X", f"disposition {disposition or 'blank'}"


def _scope(entry: dict, deleted_parents: set[tuple[str, str, str]]
           ) -> tuple[bool, str | None, str | None]:
    """(applies, within, note) for an entry: nested in public sequences, the rule holds within
    the innermost one; nested in a private sequence, at any depth (a 'within' names a public
    sequence). Entries inside a private sequence the engine or the KB removes are moot."""

    within, note = None, None
    for segment in entry["path"]:
        if "tag" in segment:
            info = standard.element_by_tag(int(segment["tag"], 16))
            if info is not None and info.vr == "SQ":
                within = info.keyword
            continue
        creator = segment["creator"]
        if not creator or creator.startswith(UNNAMED_BLOCK):
            return False, None, None
        if (creator, segment["group"], segment["offset"]) in deleted_parents:
            return False, None, None
        note = f"in {creator} ({segment['group']},xx{segment['offset']})"
    return True, within, note


def safe_private() -> set[tuple[str, str, str]]:
    """(creator, group, offset) of PS3.15 Table E.3.10-1, the Safe Private Attributes."""
    data = json.loads((DATA_FILE.parent / "safe_private.json").read_text(encoding="utf-8"))
    return {(a["creator"], a["group"], a["offset"]) for a in data["attributes"]}


def private_rules(data: dict, safe: set[tuple[str, str, str]] | None = None
                  ) -> tuple[list[PrivateRule], Counter[str], int]:
    """The rules for the knowledge base's private elements, the count of fail-closed choices by
    reason, and the number of entries that cannot matter (inside removed private sequences).

    Where the knowledge base's rows for an element disagree and PS3.15 lists the element as
    safe (``safe``), the Standard decides: K. A knowledge base that only deletes it still wins.
    """
    safe = safe or set()
    entries = entries_of(data)
    top: dict[tuple, set[str]] = defaultdict(set)
    for entry in entries:
        if not entry["path"]:
            top[(entry["creator"], entry["group"], entry["offset"])].add(entry["disposition"])
    deleted = {key for key, dispositions in top.items() if dispositions == {"d"}}
    groups: dict[tuple, list[tuple[dict, str, str | None, str | None]]] = defaultdict(list)
    moot = 0
    for entry in entries:
        applies, within, note = _scope(entry, deleted)
        if not applies:
            moot += 1
            continue
        action, reason = _action(entry["disposition"], entry["vr"])
        key = (entry["creator"], entry["group"], entry["offset"], within)
        groups[key].append((entry, action, reason, note))
    fail_closed: Counter[str] = Counter()
    rules = []
    for (creator, group, offset, within), members in groups.items():
        actions = {action for _, action, _, _ in members}
        vrs = sorted({vr for entry, _, _, _ in members for vr in entry["vr"]})
        name = next((e["name"] for e, _, _, _ in members if e["name"] != "Unknown"), "Unknown")
        kb = "; ".join(sorted({f"{e['disposition'] or 'blank'} {'/'.join(e['vr']) or '?'}"
                               + (f" {note}" if note else "")
                               for e, _, _, note in members}))
        reasons = sorted({r for _, _, r, _ in members if r})
        if len(actions) == 1:
            action = actions.pop()
            reason = "; ".join(reasons) or None
        else:
            transforms = sorted(actions - {"K", "X"})
            if within is None and (creator, group, offset) in safe:
                action, reason = "K", "rows disagree; PS3.15 Table E.3.10-1 lists it as safe"
            elif "X" not in actions and len(transforms) == 1:
                action, reason = transforms[0], "rows disagree: the more protective action"
            else:
                action, reason = "X", "rows disagree"
            if reasons:
                reason += f" ({'; '.join(reasons)})"
        if action == "X" and reason:
            fail_closed[_reason_kind(reason)] += 1
        comment = f"{name}; KB {kb}"
        if reason:
            comment += f" -> {action}: {reason}"
        rules.append(PrivateRule(creator, group, offset, within, action, vrs, comment, reason))
    rules.sort(key=lambda r: (r.creator, r.group, r.offset, r.within is not None,
                              SEVERITY[r.action], r.within or ""))
    _check_vrs(rules)
    return rules, fail_closed, moot


def _check_vrs(rules: list[PrivateRule]) -> None:
    """Every action is one the loader allows for at least one VR the knowledge base gives (the
    loader cannot check private rules itself: it does not know their VR)."""

    for rule in rules:
        allowed = ACTION_VRS.get(rule.action)
        if allowed is not None and not set(rule.vrs) & allowed:
            raise SystemExit(f"{rule.creator} ({rule.group},xx{rule.offset}): {rule.action} "
                             f"cannot apply to {'/'.join(rule.vrs) or 'an unknown VR'}")


def _reason_kind(reason: str) -> str:
    if reason.startswith("rows disagree"):
        return "rows for the element disagree"
    if reason.startswith("h,"):
        return "h on a VR that cannot be hashed"
    if reason.startswith("o,"):
        return "o on a VR that is not a date"
    if reason.startswith("oi"):
        return "oi (offset an integer): no such action"
    return "blank or na disposition"


def decided_options() -> list[tuple[str, str, str]]:
    """Where the options TCIA composes disagree, the more protective action, decided here:
    (keyword, action, why) for each. Fails if a disagreement needs a person to decide."""

    composition = Composition.of(load_documents(EXTENDS))
    decided = []
    for d in analyse(composition)[1]:
        actions = {d.earlier.action, d.later.action}
        others = sorted(actions - {"K"})
        if len(others) != 1 or len(actions) != 2:
            raise SystemExit(f"options disagree on {d.later.selector} ({sorted(actions)}): "
                             "decide it in deid/curator/tcia.py")
        why = (f"{d.earlier.profile} {d.earlier.action}, {d.later.profile} {d.later.action}: "
               f"the more protective {others[0]}")
        decided.append((d.later.selector, others[0], why))
    return sorted(set(decided))


# TCIA gives every patient a pseudonym, a collection prefix and a number, so a researcher can
# group studies by patient; here the number is a keyed hash of the original PatientID, the same
# in every run and on every worker with the same key.
PSEUDONYM_PREFIX = "PAT-"
PSEUDONYM = """\
# Patient pseudonym (option)
# Generated by `python -m deid.curator.tcia`; do not edit: write a profile that extends it.
#
# PatientID becomes a prefix and the keyed hash of the original PatientID (16 hex digits): the
# same patient gets the same pseudonym in every instance, run and worker with the same key, so
# studies still group by patient. The crosswalk (--linkage_output, patid_mapping.csv) links
# each original ID to its pseudonym. For another prefix, extend this profile with your own
# rule, e.g. {{attribute: PatientID, action: replace, template: 'LUNG1-{{hash}}'}}.
name: patient-pseudonym
title: Patient pseudonym
description: PatientID replaced by a prefix and a keyed hash of the original ID, consistent per
  patient.
extends:
- basic
rules:
- {{attribute: PatientID, action: replace, template: '{prefix}{{hash}}'}}  # (0010,0020) Patient ID
"""


def render_pseudonym(out: Path | None = PSEUDONYM_FILE) -> str:
    """The text of profiles/patient-pseudonym.yaml; written to ``out`` unless it is None."""
    text = PSEUDONYM.format(prefix=PSEUDONYM_PREFIX)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text


HEADER = """\
# TCIA-style curation (example)
# Generated by `python -m deid.curator.tcia` from deid/standard/data/tcia_private.json, The
# Cancer Imaging Archive's private tag knowledge base of 2024-02-01 ({rows} rows); do not
# edit: write a profile that extends it.
#
# Public attributes: the Basic Profile and the options TCIA applies ('extends'). Where two of
# those options disagree, the first rules below decide, for the more protective action.
# Private attributes: TCIA's dispositions, by private creator, group and element offset:
#   k -> K keep (C clean where the VR is free text, U where it is a UID); d -> X remove;
#   h -> hash (U where the element is a UID); o -> shift (dates).
# A rule for an element nested in a public sequence holds 'within' the innermost one; one for
# an element nested in a private sequence holds at any depth. Elements the knowledge base does
# not list are removed (basic's 'private: remove'), but for PS3.15's safe private attributes
# (retain-safe-private); where the knowledge base says otherwise for one of those, it wins.
#
# {summary}
#
# Removed instead (fail closed), by reason:
{fail_closed}
# Knowledge base rows not turned into rules:
{skipped}
"""

DESCRIPTION = ("An example of a TCIA-style curation: the Basic Profile with a patient "
               "pseudonym, modified dates, patient characteristics, device identity, safe "
               "private attributes and clean descriptors, plus TCIA's private tag knowledge "
               "base (2024-02-01) deciding each private element it lists.")


def _flow(mapping: dict) -> str:
    return yaml.safe_dump(mapping, default_flow_style=True, width=10**6, sort_keys=False,
                          allow_unicode=True).strip()


def _comment(text: str) -> str:
    return " ".join(text.split())


def render(data_file: Path = DATA_FILE, out: Path | None = PROFILE_FILE) -> str:
    """The text of profiles/tcia.yaml; written to ``out`` unless it is None."""
    data = json.loads(data_file.read_text(encoding="utf-8"))
    safe = safe_private()
    rules, fail_closed, moot = private_rules(data, safe)
    options = decided_options()
    actions = Counter(r.action for r in rules)
    safe_kept = sum(1 for r in rules if r.reason and "E.3.10-1" in r.reason)
    safe_removed = sum(1 for r in rules if r.within is None and r.action == "X"
                       and (r.creator, r.group, r.offset) in safe)
    summary = (f"{len(rules)} private rules from {len(data['entries'])} entries: "
               + ", ".join(f"{actions[a]} {a}" for a in sorted(actions, key=SEVERITY.get))
               + f"; {sum(1 for r in rules if r.within)} of them 'within' a sequence; "
               f"{moot} entries skipped as nested in a private sequence that is removed whole. "
               f"Of PS3.15's safe private attributes, {safe_removed} are removed because the "
               f"knowledge base deletes them, and {safe_kept} kept where its rows disagree.")
    skipped = dict(data["skipped"])
    header = HEADER.format(
        rows=data["rows"], summary=_wrap(summary),
        fail_closed="\n".join(f"#   {count:4d}  {reason}"
                              for reason, count in sorted(fail_closed.items())) or "#   none",
        skipped="\n".join(f"#   {count:4d}  {_comment(reason)}"
                          for reason, count in sorted(skipped.items())) or "#   none")
    normalized = data["normalized_dispositions"]
    if normalized:
        header += ("# Dispositions read case- and space-insensitively: "
                   + ", ".join(f"{raw} ({n})" for raw, n in normalized.items()) + "\n")
    document = {"name": "tcia", "title": "TCIA-style curation (example)",
                "description": DESCRIPTION, "extends": EXTENDS}
    body = yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)
    lines = ["rules:", "# Options that disagree, decided here:"]
    for keyword, action, why in options:
        lines.append(f"- {_flow({'attribute': keyword, 'action': action})}  # {why}")
    creator = None
    for rule in rules:
        if rule.creator != creator:
            creator = rule.creator
            count = sum(1 for r in rules if r.creator == creator)
            lines.append(f"# {_comment(creator)}: {count} rule{'s' if count != 1 else ''}")
        mapping: dict = {"private": {"creator": rule.creator,
                                     "tag": f"({rule.group},xx{rule.offset})"}}
        if rule.within:
            mapping["within"] = rule.within
        if rule.action == "K" and rule.vrs and "SQ" not in rule.vrs:
            # E.3.10: what the knowledge base knows safe is the element with its VRs; text
            # where it says IS or OB is another element, or another vendor's reuse of the tag.
            mapping["vr"] = "/".join(rule.vrs)
        mapping["action"] = rule.action
        lines.append(f"- {_flow(mapping)}  # {_comment(rule.comment)}")
    text = header + body + "\n".join(lines) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text


def _wrap(text: str, width: int = 96) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n# ".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"the knowledge base CSV (default: ../shared/reference/{KB_NAME})")
    parser.add_argument("--render-only", action="store_true",
                        help="only write profiles/tcia.yaml from deid/standard/data/")
    args = parser.parse_args(argv)
    if not args.render_only:
        extract(args.source)
        print(f"wrote {DATA_FILE.relative_to(PROJECT_ROOT)}")
    render_pseudonym()
    render()

    (document,) = [d for d in load_documents([str(PROFILE_FILE)]) if d.name == "tcia"]
    print(f"wrote {PROFILE_FILE.relative_to(PROJECT_ROOT)}: {len(document.rules)} rules, "
          "all accepted by the loader")


if __name__ == "__main__":
    main()

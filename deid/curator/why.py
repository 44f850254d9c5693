"""`deid explain --why`: the reasons behind one element's action, in words.

For the rule that decided: the profile and line it was written on (with that line's comment),
the PS3.15 Table E.1-1 row and the column of the option whose rule it is, the earlier rules it
replaced; for a compound code the alternative taken and why (the attribute's Type in the
instance's IOD and the module that gives it); for an element no rule names, the unlisted
policy entry that decided it; conditional rules that did not hold, and why; what a date shift
could not do. Values of the instance are never quoted, except coded values (CS) a condition
compares.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from deid import standard
from deid.curator.composition import describe_action
from deid.engine import Decision
from deid.engine.dates import shift_values
from deid.profile.loader import ProfileDocument
from deid.profile.model import COMPOUND, Profile, Rule
from deid.standard import keyword_of

TYPE_NEEDS = {"3": "may be absent", "2": "must be present, may be empty",
              "1": "must have a value"}
GENERATED_COMMENT = re.compile(r"^\([0-9A-Fa-fx]{4},[0-9A-Fa-fx]{4}\) [^;]*;?\s*")


@cache
def _lines(file: str) -> list[str]:
    """The lines of a profile file (a built-in as profiles/NAME.yaml); [] if unreadable."""
    try:
        if file.startswith("profiles/") and "/" not in file[len("profiles/"):]:
            text = resources.files("deid.builtin_profiles").joinpath(
                file[len("profiles/"):]).read_text(encoding="utf-8")
        else:
            text = Path(file).read_text(encoding="utf-8")
    except OSError:
        return []
    return text.splitlines()


def rule_comment(rule: Rule) -> str:
    """The comment on the rule's line, without the generated '(gggg,eeee) Name' prefix."""
    lines = _lines(rule.source.file)
    if not 0 < rule.source.line <= len(lines):
        return ""
    line = lines[rule.source.line - 1]
    if " # " not in line:
        return ""
    comment = line.split(" # ", 1)[1].strip()
    return GENERATED_COMMENT.sub("", comment).strip()


@dataclass
class Context:
    """What the reasons of every element of one instance need."""

    profile: Profile
    documents: list[ProfileDocument]
    iod: str | None
    originals: dict[int, list[str]]  # the top-level values conditions read
    replaced: dict[tuple, list[Rule]] = field(default_factory=dict)  # rule source -> earlier
    titles: dict[str, str] = field(default_factory=dict)  # profile name -> title

    @classmethod
    def of(cls, profile: Profile, documents: list[ProfileDocument], iod: str | None,
           originals: dict[int, list[str]]) -> Context:
        context = cls(profile, documents, iod, originals)
        by_key: dict[tuple, list[Rule]] = defaultdict(list)
        for doc in documents:
            context.titles[doc.name] = str(doc.data.get("title") or doc.name)
            for key, rule in doc.rules:
                earlier = by_key[key]
                context.replaced[_where(rule)] = [
                    r for r in reversed(earlier)
                    if not rule.conditional or r.condition_key == rule.condition_key]
                earlier.append(rule)
        return context


def _where(rule: Rule) -> tuple:
    return (rule.source.file, rule.source.line, rule.source.column)


def reasons(context: Context, decision: Decision, result: str, creator: str | None) -> list[str]:
    """Why the element got its action, one sentence each."""
    rule, tag = decision.rule, decision.tag
    path = tuple(step for step in decision.path.split(">")[:-1])
    out = _not_applied(context, tag, creator, rule, path)
    if rule is None:
        return out
    if rule.selector.startswith("any unlisted"):
        out.append(_unlisted(rule, tag))
    else:
        origin = f"rule {describe_action(rule)} for {rule.selector} at {rule.source}, " \
                 f"profile {rule.profile}"
        comment = rule_comment(rule)
        out.append(origin + (f" ({comment})" if comment else ""))
        row = standard.table_row(tag) if not (tag >> 16) % 2 else None
        if row is not None:
            out.append(_table_row(context, row, rule))
    for earlier in context.replaced.get(_where(rule), [])[:3]:
        out.append(f"it replaced {describe_action(earlier)} at {earlier.source} "
                   f"(profile {earlier.profile}): later wins")
    if rule.action in COMPOUND:
        out.append(_compound(context, rule.action, decision.action, tag, path))
    if decision.action == "U" and result == "kept":
        out.append("a UID the Standard defines (PS3.6 Annex A): kept, as U keeps them")
    if rule.action == "shift" and result in ("emptied", "removed") and decision.before:
        out.append(_shift_failed(decision))
    return out


def _unlisted(rule: Rule, tag: int) -> str:
    vr = rule.selector.rsplit(" ", 1)[1]
    what = ("a public tag the PS3.6 dictionary does not hold" if vr == "unknown"
            else f"an attribute of VR {vr} that no rule names and PS3.15 Table E.1-1 does "
                 "not list")
    comment = rule_comment(rule)
    return (f"{what}: the unlisted policy of profile {rule.profile} decides it, "
            f"{describe_action(rule)} at {rule.source}" + (f" ({comment})" if comment else "")
            + " (PS3.15 E.1.1)")


def _table_row(context: Context, row: dict, rule: Rule) -> str:
    """'PS3.15 Table E.1-1 row (0010,0010) Patient's Name: Basic Profile column Z'."""
    key = row["tag"]
    shown = f"({key[:4]},{key[4:]})"
    column = rule.profile.replace("-", "_")
    text = f"PS3.15 Table E.1-1 row {shown} {row['name']}"
    if column in row:
        return f"{text}: {context.titles.get(rule.profile, rule.profile)} column {row[column]}"
    codes = ", ".join(f"{name.replace('_', '-')} {code}" for name, code in row.items()
                      if name not in ("tag", "name", "retired", "in_std_comp_iod"))
    return f"{text} ({codes}); this rule is {rule.profile}'s own"


def _compound(context: Context, code: str, action: str, tag: int, path: tuple[str, ...]) -> str:
    """'X/D -> D: Type 1 in CT Image, module General Series'."""
    head = f"{code} -> {action}"
    keyword = keyword_of(tag)
    # The table's X where only an IOD that requires the attribute keeps it (the engine's
    # _resolve): an unknown Type means X there, not the most demanding alternative.
    unknown = ("the table says X, so removed" if standard.removed_unless_required(keyword)
               else "so the most demanding alternative")
    if context.iod is None:
        return f"{head}: the SOP Class has no IOD the tables know; {unknown}"
    name = standard.iod_name(context.iod)
    kind = standard.attribute_type(context.iod, keyword, path)
    where = f" inside {'>'.join(path)}" if path else ""
    if kind == "":
        return (f"{head}: {name} does not require {keyword}{where} (it is not Type 1 or 2 "
                "there), so the first alternative")
    if kind is None:
        return f"{head}: {name} defines {keyword}, but not{where or ' at the top level'}: " \
               f"its Type there is unknown; {unknown}"
    module = standard.defining_module(context.iod, keyword, path)
    needs = TYPE_NEEDS[kind[0]]
    if kind.endswith("C"):
        held = "it holds" if action != COMPOUND[code][0] else "it does not hold"
        needs = f"{needs} if the patient is an {standard.condition_of(keyword)}: {held}"
    return (f"{head}: Type {kind} in {name}" + (f", module {module}" if module else "")
            + f"{where} ({needs})")


def _not_applied(context: Context, tag: int, creator: str | None, chosen: Rule | None,
                 path: tuple[str, ...]) -> list[str]:
    """The conditional rules tried before the one that applied, and why each did not."""
    if (tag >> 16) % 2:
        if not creator:
            return []
        candidates = context.profile.private_rules(creator, tag >> 16, tag & 0xFF)
    else:
        candidates = context.profile.rules_for_tag(tag)
    out = []
    for rule in candidates:
        if rule is chosen or not rule.conditional:
            break
        out.append(f"rule {describe_action(rule)} at {rule.source} did not apply: "
                   f"{_failed_condition(context, rule, path)}")
    return out


def _failed_condition(context: Context, rule: Rule, path: tuple[str, ...]) -> str:
    if rule.within is not None and rule.within not in path:
        return f"not inside {rule.within}"
    for tag, values in rule.when:
        found = [v.strip() for v in context.originals.get(tag, [""])]
        if any(v in values for v in found):
            continue
        keyword = keyword_of(tag)
        info = standard.element_by_tag(tag)
        if not any(found):
            return f"{keyword} is absent or empty"
        if info is not None and info.vr == "CS":  # a code, not an identifier: shown
            shown = "\\".join(found)
            return f"{keyword} is {shown}"
        return f"{keyword} has another value (masked)"
    return "its conditions do not hold"


def _shift_failed(decision: Decision) -> str:
    """Why a shifted date came out empty: it could not be read, or it left DICOM's years."""
    readable = shift_values(decision.vr, (decision.before or "").split("\\"), 0)
    if readable is None:
        return f"the value is not a {decision.vr} value a shift can read: emptied (fail closed)"
    return (f"the shifted {decision.vr} falls outside the years 1000 to 9999 a DICOM date is "
            "written in: emptied (fail closed)")


__all__ = ["Context", "reasons", "rule_comment"]

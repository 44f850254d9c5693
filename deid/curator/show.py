"""`deid profile list` and `deid profile show`: the built-in profiles, and a resolved profile as
a table of rules with where each was written."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources

import yaml

from deid import standard
from deid.curator.composition import (
    describe_action,
    describe_conditions,
    rule_json,
)
from deid.profile.loader import VALID_VRS, builtin_names, tag_pattern
from deid.profile.model import ANY_PRIVATE, Profile, Rule
from deid.standard import keyword_of, tag_text


@dataclass(frozen=True)
class BuiltinProfile:
    """One built-in profile as `profile list` shows it."""

    name: str
    title: str
    description: str
    edition: str  # of the Standard, its own or that of what it extends
    section: str
    extends: tuple[str, ...]

    def as_json(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description,
                "edition": self.edition, "section": self.section or None,
                "extends": list(self.extends)}


def builtin_profiles() -> list[BuiltinProfile]:
    """Every built-in profile's heading. Only the headings are read (with libyaml when there
    is one, so the large generated profiles cost little); `profile lint` validates them."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = resources.files("deid.builtin_profiles")
    headings = {}
    for name in builtin_names():
        data = yaml.load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"),
                         Loader=loader)  # noqa: S506 - a safe loader
        headings[name] = data if isinstance(data, dict) else {}

    def edition(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        data = headings.get(name, {})
        if "edition" in data:
            return {str(data["edition"])}
        parents = data.get("extends", [])
        parents = [parents] if isinstance(parents, str) else parents
        return set().union(*(edition(p, (*seen, name)) for p in parents if p not in seen))

    out = []
    for name, data in headings.items():
        extends = data.get("extends", [])
        out.append(BuiltinProfile(
            name=name, title=str(data.get("title", "")),
            description=" ".join(str(data.get("description", "")).split()),
            edition="/".join(sorted(edition(name))) or "-",
            section=str(data.get("section", "")),
            extends=tuple([extends] if isinstance(extends, str) else extends)))
    return out


@dataclass(frozen=True)
class RuleRow:
    """One candidate rule of the resolved profile."""

    tag: str  # '(0010,0010)', '(60xx,3000)', '(0019,xx23)' or '*'
    element: str  # keyword, 'private CREATOR' or 'any unlisted PN'
    rule: Rule
    kind: str  # tag, pattern, private or unlisted
    order: int  # 1 for the first candidate tried

    def as_json(self) -> dict:
        return {"tag": self.tag, "element": self.element, "kind": self.kind,
                "order": self.order, **rule_json(self.rule)}

    @property
    def cells(self) -> list[str]:
        conditions = describe_conditions(self.rule)
        if self.order > 1 and not self.rule.conditional:
            conditions = "otherwise"
        source = self.rule.source
        return [self.tag, self.element, describe_action(self.rule), conditions or "",
                f"{source.file}:{source.line}"]


def _pattern_text(mask: int, value: int) -> str:
    digits = f"{value:08X}"
    mask_digits = f"{mask:08X}"
    text = "".join("x" if m == "0" else d for d, m in zip(digits, mask_digits, strict=True))
    return f"({text[:4]},{text[4:]})"


def rule_rows(profile: Profile) -> list[RuleRow]:
    """Every candidate rule, public tags in tag order, then repeating groups, private
    elements by creator, and the rules by VR for elements no rule names."""
    rows: list[RuleRow] = []
    for tag in sorted(profile.by_tag):
        for order, rule in enumerate(profile.by_tag[tag], start=1):
            rows.append(RuleRow(tag_text(tag), keyword_of(tag), rule, "tag", order))
    for mask, value, rules in sorted(profile.by_pattern, key=lambda p: p[1]):
        info = standard.element_by_tag(value)
        for order, rule in enumerate(rules, start=1):
            name = info.keyword if info and not rule.selector.startswith("(") else rule.selector
            rows.append(RuleRow(_pattern_text(mask, value), name, rule, "pattern", order))
    for (creator, group, offset) in sorted(profile.by_private):
        tag = (f"({group:04X},xx{offset:02X})" if offset != ANY_PRIVATE
               else f"({group:04X},xxxx)" if group != ANY_PRIVATE else "(gggg,xxxx)")
        for order, rule in enumerate(profile.by_private[(creator, group, offset)], start=1):
            rows.append(RuleRow(tag, f"private {creator}", rule, "private", order))
    for vr in sorted(profile.unlisted):
        rows.append(RuleRow("*", f"any unlisted {vr}", profile.unlisted[vr], "unlisted", 1))
    return rows


def select(profile: Profile, rows: list[RuleRow], wanted: list[str]
           ) -> tuple[list[RuleRow], list[str]]:
    """The rows that decide the elements asked for, and a message for each request that names
    nothing. A request is a keyword (any case), a tag in any spelling (a concrete tag finds the
    repeating-group rule it falls under: (6000,3000) finds (60xx,3000)), a private creator, or a
    VR (its unlisted rule). An attribute no rule names shows the unlisted rule that decides it
    by its VR."""
    chosen: set[int] = set()
    problems = []
    by_keyword = {k.lower(): k for k in standard.keywords()}
    for text in (w.strip() for w in wanted):
        found = _rows_for(profile, rows, text, by_keyword)
        if found is None:
            fix = _did_you_mean(text, rows, by_keyword)
            problems.append(f"{text!r} is not a keyword, a tag, a private creator or a VR"
                            + (f": did you mean {fix!r}?" if fix else ""))
        chosen.update(found or ())
    return [row for i, row in enumerate(rows) if i in chosen], problems


def _rows_for(profile: Profile, rows: list[RuleRow], text: str,
              by_keyword: dict[str, str]) -> set[int] | None:
    """Indices of the rows a request selects; None if it names nothing."""
    if text.lower().startswith("private "):
        text = text[len("private "):]
    creators = {i for i, r in enumerate(rows) if r.kind == "private"
                and r.element[len("private "):].lower() == text.lower()}
    if creators:
        return creators
    unlisted = {i for i, r in enumerate(rows) if r.kind == "unlisted"
                and r.element == f"any unlisted {text}"}
    if unlisted or text in VALID_VRS:
        return unlisted
    pattern = tag_pattern(text)
    if pattern is None:
        keyword = by_keyword.get(text.lower())
        info = standard.element_by_keyword(keyword) if keyword else None
        if info is None:
            return None
        mask = standard.repeating_mask(info.keyword)
        pattern = (mask, info.tag) if mask is not None else (0xFFFFFFFF, info.tag)
    mask, value = pattern
    texts = {tag_text(value), _pattern_text(mask, value)}
    group, element = value >> 16, value & 0xFFFF
    if group % 2 and mask & 0xFFFF0000 == 0xFFFF0000:
        # A private tag as a dump shows it, (0019,1002): the rules for its offset in any
        # block, and for the creator's whole block in that group.
        texts |= {f"({group:04X},xx{element & 0xFF:02X})", f"({group:04X},xxxx)"}
    found = {i for i, r in enumerate(rows) if r.tag in texts}
    if not found and mask == 0xFFFFFFFF:
        # The repeating-group rule a concrete tag falls under, the most specific first, as
        # the engine tries them.
        for pattern_mask, pattern_value, _ in profile.by_pattern:
            if value & pattern_mask == pattern_value:
                shown = _pattern_text(pattern_mask, pattern_value)
                found = {i for i, r in enumerate(rows) if r.tag == shown}
                break
    if not found and mask == 0xFFFFFFFF and not (value >> 16) % 2:
        info = standard.element_by_tag(value)
        vr = info.vr.split("/")[0] if info else "unknown"
        rule = profile.unlisted_rule(value, vr)
        found = {i for i, r in enumerate(rows) if r.kind == "unlisted" and r.rule is rule}
    return found


def _did_you_mean(text: str, rows: list[RuleRow], by_keyword: dict[str, str]) -> str:
    creators = {r.element[len("private "):] for r in rows if r.kind == "private"}
    options = {**by_keyword, **{c.lower(): c for c in creators}}
    close = difflib.get_close_matches(text.lower(), list(options), n=1, cutoff=0.6)
    return options[close[0]] if close else ""


def settings(profile: Profile) -> dict:
    return {
        "profiles": list(profile.names),
        "editions": sorted(set(profile.editions)),
        "private": profile.private,
        "burned_in": profile.burned_in,
        "temporal": profile.temporal,
        "date_shift": {"min_days": profile.date_shift.min_days,
                       "max_days": profile.date_shift.max_days},
        "method_codes": [{"value": c.value, "scheme": c.scheme, "meaning": c.meaning}
                         for c in profile.method_codes],
        "pixels": {
            "ultrasound_regions": profile.pixels.ultrasound_regions, "ocr": profile.pixels.ocr,
            "rules": [{"name": r.name, "source": str(r.source),
                       "match": {c.keyword: ({"pattern": c.pattern} if c.pattern is not None
                                             else sorted(c.values)) for c in r.match},
                       "blank": [str(region) for region in r.blank]}
                      for r in profile.pixels.rules]},
    }


__all__ = ["BuiltinProfile", "RuleRow", "builtin_profiles", "rule_rows", "select", "settings"]

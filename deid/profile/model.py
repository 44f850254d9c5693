"""The resolved profile: what the engine applies, with where each rule came from."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from deid import standard
from deid.keys import SecretKey

# Action codes of PS3.15 Table E.1-1a, then the curator actions this project adds.
TABLE_CODES = ("X", "Z", "D", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*")
CURATOR_ACTIONS = ("replace", "hash", "shift", "lookup")
ACTIONS = TABLE_CODES + CURATOR_ACTIONS
ACTION_ALIASES = {"remove": "X", "empty": "Z", "dummy": "D", "keep": "K", "clean": "C",
                  "uid": "U"}
ACTION_NAMES = {"X": "remove", "Z": "empty", "D": "dummy", "K": "keep", "C": "clean",
                "U": "replace UID"}

# Compound codes (Table E.1-1a): the alternatives, from least to most demanding Type.
COMPOUND = {"Z/D": ("Z", "D"), "X/Z": ("X", "Z"), "X/D": ("X", "D"), "X/Z/D": ("X", "Z", "D"),
            "X/Z/U*": ("X", "Z", "U")}

# A private rule's group or element offset that matches any: a rule for a creator's whole
# block in a group, or for every element of the creator.
ANY_PRIVATE = -1

PrivatePolicy = Literal["remove", "keep"]
BurnedInPolicy = Literal["reject", "clean", "accept"]
UltrasoundPolicy = Literal["off", "keep-inside"]
OcrPolicy = Literal["off", "check", "redact"]


@dataclass(frozen=True)
class Source:
    """Where a rule or setting was written."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Lookup:
    """A table from an original value to its replacement, loaded from a CSV file.

    Once sealed, the table is keyed by HMAC(key, original value) instead of the value, so a
    profile that travels (in a pipeline's job graph) carries no original identifier.
    """

    file: str
    table: dict[str, str]
    key_tag: int | None  # the attribute whose original value is looked up; None: this one
    missing: str  # 'reject' or a table code to apply when the value is not in the table
    sealed: bool = False

    def get(self, original: str, key: SecretKey) -> str | None:
        """The replacement of an original value, or None."""
        return self.table.get(seal_value(key, original) if self.sealed else original)

    def seal(self, key: SecretKey) -> Lookup:
        if self.sealed:
            return self
        table = {seal_value(key, original): new for original, new in self.table.items()}
        return replace(self, table=table, sealed=True)


def template_fields(template: str) -> tuple[str, ...]:
    """The {fields} of a template, in order; raises ValueError for a malformed one."""
    return tuple(field for _, field, _, _ in string.Formatter().parse(template) if field)


def seal_value(key: SecretKey, original: str) -> str:
    """The keyed digest a sealed lookup table is indexed by."""
    return key.digest(b"lookup", original.encode("utf-8")).hex()


@dataclass(frozen=True)
class Rule:
    """One action for the elements a selector matches, where its conditions hold."""

    action: str
    selector: str  # as written: keyword, tag, pattern or private creator and tag
    source: Source
    profile: str
    value: str | None = None  # replace
    template: str | None = None  # replace
    lookup: Lookup | None = None
    # Conditions: every (tag, values) pair holds on the instance's top-level original values.
    when: tuple[tuple[int, frozenset[str]], ...] = ()
    within: str | None = None  # keyword of a sequence the element must be nested in
    allow: frozenset[str] | None = None  # clean: exact values kept, the rest removed
    allow_patterns: tuple[str, ...] = ()  # clean: regular expressions (re.search) kept
    # Private rules: the VR(s) the element must have ('OB/OW'); with another, it is removed
    # (PS3.15 E.3.10: Table E.3.10-1 says which VR the safe element has).
    vr: str | None = None

    @property
    def template_fields(self) -> tuple[str, ...]:
        """The fields a replace template reads: 'hash' and attribute keywords."""
        return template_fields(self.template) if self.template is not None else ()

    @property
    def conditional(self) -> bool:
        return bool(self.when) or self.within is not None

    @property
    def condition_key(self) -> tuple:
        """What makes two rules for the same elements compete: the later one replaces."""
        return (self.when, self.within)

    def applies(self, path: tuple[str, ...], originals: dict[int, list[str]]) -> bool:
        """Whether the conditions hold for an element at this sequence path."""
        if self.within is not None and self.within not in path:
            return False
        return all(any(v.strip() in values for v in originals.get(tag, [""]))
                   for tag, values in self.when)


@dataclass(frozen=True)
class PixelCondition:
    """One header test of a pixel rule, on the instance's original top-level values: one of
    them equals one of ``values``, or, with a ``pattern``, contains a match of it (re.search).
    An absent or empty attribute has the single value ''."""

    tag: int
    keyword: str
    values: frozenset[str] = frozenset()
    pattern: str | None = None

    def holds(self, originals: dict[int, list[str]]) -> bool:
        found = originals.get(self.tag) or [""]
        if self.pattern is not None:
            return any(re.search(self.pattern, value) for value in found)
        return any(value in self.values for value in found)


@dataclass(frozen=True)
class PixelRegion:
    """A rectangle to blank: columns [left, left + width), rows [top, top + height), in the
    given 1-based frames or (None) in every frame."""

    left: int
    top: int
    width: int
    height: int
    frames: tuple[int, ...] | None
    source: Source

    def __str__(self) -> str:
        frames = f" in frame(s) {', '.join(map(str, self.frames))}" if self.frames else ""
        return f"[{self.left}, {self.top}, {self.width}, {self.height}]{frames}"


@dataclass(frozen=True)
class PixelRule:
    """Where a known device burns text in: the instances its conditions hold for, and the
    regions to blank in them (PS3.15 E.3.1)."""

    name: str
    match: tuple[PixelCondition, ...]
    blank: tuple[PixelRegion, ...]
    source: Source
    profile: str

    def matches(self, originals: dict[int, list[str]]) -> bool:
        return all(condition.holds(originals) for condition in self.match)


@dataclass(frozen=True)
class PixelPolicy:
    """How burned-in text is cleaned from the pixels (PS3.15 E.3.1)."""

    rules: tuple[PixelRule, ...] = ()  # in the order they are tried; the first match wins
    ultrasound_regions: UltrasoundPolicy = "off"
    ocr: OcrPolicy = "off"

    def first_match(self, originals: dict[int, list[str]]) -> PixelRule | None:
        return next((rule for rule in self.rules if rule.matches(originals)), None)

    def match_tags(self) -> set[int]:
        """The tags whose original values some rule's match reads."""
        return {condition.tag for rule in self.rules for condition in rule.match}


@dataclass(frozen=True)
class MethodCode:
    """A CID 7050 code for De-identification Method Code Sequence."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class DateShift:
    """The range, in days, from which each patient's offset is drawn."""

    min_days: int = -3650
    max_days: int = -1


@dataclass(frozen=True)
class Profile:
    """A composition of profiles, resolved: later rules have replaced earlier ones.

    Plain data, picklable, shared read-only by every instance the engine processes.
    """

    names: tuple[str, ...]
    editions: tuple[str, ...]
    # Candidate rules per element, highest precedence first: the engine applies the first
    # whose conditions hold. An unconditional rule ends its list.
    by_tag: dict[int, tuple[Rule, ...]] = field(default_factory=dict)
    by_pattern: tuple[tuple[int, int, tuple[Rule, ...]], ...] = ()  # (mask, value, rules)
    by_private: dict[tuple[str, int, int], tuple[Rule, ...]] = field(default_factory=dict)
    # The unlisted policy: by VR, and 'unknown' for public tags not in the dictionary.
    unlisted: dict[str, Rule] = field(default_factory=dict)
    private: PrivatePolicy = "remove"
    burned_in: BurnedInPolicy = "reject"
    pixels: PixelPolicy = PixelPolicy()
    temporal: str = "REMOVED"
    date_shift: DateShift = DateShift()
    method_codes: tuple[MethodCode, ...] = ()
    basic: bool = False  # the composition contains the built-in basic profile (PS3.15 E.2)

    def rules_for_tag(self, tag: int) -> tuple[Rule, ...]:
        """The candidate rules of a public tag; exact tags before repeating-group patterns."""
        rules = self.by_tag.get(tag)
        if rules is not None:
            return rules
        for mask, value, pattern_rules in self.by_pattern:
            if tag & mask == value:
                return pattern_rules
        return ()

    def private_rules(self, creator: str, group: int, offset: int) -> tuple[Rule, ...]:
        """The candidate rules of a private element: the most specific selector first, as for
        repeating groups: the element's own, then its creator's block in its group, then
        every element of its creator."""
        for key in ((creator, group, offset), (creator, group, ANY_PRIVATE),
                    (creator, ANY_PRIVATE, ANY_PRIVATE)):
            rules = self.by_private.get(key)
            if rules is not None:
                return rules
        return ()

    def unlisted_rule(self, tag: int, vr: str) -> Rule | None:
        """The unlisted policy's rule for a public element no rule names: 'unknown' for a tag
        the PS3.6 dictionary does not hold, whatever its VR (PS3.15 E.1.1), else by VR."""
        unknown = self.unlisted.get("unknown")
        if unknown is not None and not standard.in_dictionary(tag):
            return unknown
        return self.unlisted.get(vr)

    def all_rules(self) -> list[Rule]:
        """Every candidate rule, for checks over the whole profile."""
        return [*(r for rules in self.by_tag.values() for r in rules),
                *(r for _, _, rules in self.by_pattern for r in rules),
                *(r for rules in self.by_private.values() for r in rules),
                *self.unlisted.values()]

    def with_sealed_lookups(self, key: SecretKey) -> Profile:
        """The same profile with every lookup table sealed by the key (see Lookup)."""
        def sealed(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
            return tuple(replace(r, lookup=r.lookup.seal(key)) if r.lookup else r
                         for r in rules)

        return replace(
            self,
            by_tag={tag: sealed(rules) for tag, rules in self.by_tag.items()},
            by_pattern=tuple((m, v, sealed(rules)) for m, v, rules in self.by_pattern),
            by_private={k: sealed(rules) for k, rules in self.by_private.items()},
        )

    # Facts the engine needs for every instance, computed once per profile (cached_property
    # writes the instance's __dict__, which a frozen dataclass allows).

    @cached_property
    def original_tags(self) -> frozenset[int]:
        """The tags whose original values rules read: conditions ('when'), lookup keys and
        pixel rules' matches."""
        rules = self.all_rules()
        return frozenset({tag for rule in rules for tag, _ in rule.when}
                         | {r.lookup.key_tag for r in rules
                            if r.lookup and r.lookup.key_tag is not None}
                         | self.pixels.match_tags())

    @cached_property
    def cleans(self) -> bool:
        """Whether some rule cleans text (C), for which the engine gathers the instance's
        identifying values at every depth; the unlisted policy's C on coded values needs only
        names and IDs (cleans_codes)."""
        codes = self.unlisted.get("CS")
        return any(r.action == "C" for r in self.all_rules() if r is not codes)

    @cached_property
    def cleans_codes(self) -> bool:
        """Whether some rule cleans (C), coded values included."""
        return any(r.action == "C" for r in self.all_rules())

    @property
    def description(self) -> str:
        """A short text for De-identification Method (0012,0063)."""
        editions = "/".join(sorted(set(self.editions))) or "custom"
        return f"deid {'+'.join(self.names)} (PS3.15 {editions})"

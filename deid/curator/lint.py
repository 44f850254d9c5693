"""`deid profile lint`: every problem of a profile, or of a composition, with where and a fix.

The loader already refuses what it cannot use (schema errors, unknown keywords with a
suggestion, actions the VR does not allow, unreadable or malformed lookup files): those come
back as its ``ProfileError`` problems. On a profile that loads, lint adds what is legal but
almost certainly a mistake:

- shadowed: a rule that never applies because a later rule in the same file has the same
  selector and conditions (or is an unconditional rule for the same selector);
- disagree: two profiles of the composition, neither extending the other (two options, or two
  curator files composed side by side), set different actions for the same element, so the
  order they happen to be listed in decides. A profile overriding what it extends (an option
  overriding basic, a site profile overriding an option) is the intended use and is not
  reported; nor is a disagreement that a profile extending both decides explicitly;
- condition: a 'when' value that is not valid for the attribute's VR, so it can never match;
- lookup: a replacement not valid for the attribute's VR, or two original values mapped to one
  replacement (which would merge two subjects);
- template: a replace template whose {Keyword} field names an attribute that a template also
  writes. Templates are rendered one after another, so the field may still hold the original,
  identifying value when it is read;
- pixels: a pixel rule's 'match' value the attribute cannot hold (condition), a region or frame
  outside the image its match pins by Rows, Columns or NumberOfFrames (region), a pixel rule
  an earlier-tried one with the same match hides (shadowed).
"""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pydicom.valuerep import validate_value

from deid import standard
from deid.curator.composition import (
    Composition,
    describe_action,
    effect,
)
from deid.profile.loader import (
    ACTION_VRS,
    EXCLUSIVE_MESSAGE,
    Located,
    Problem,
    ProfileError,
    load_documents,
    load_profiles,
)
from deid.profile.model import ANY_PRIVATE, PixelRule, Profile, Rule, Source
from deid.standard import keyword_of, tag_text

BINARY_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})


@dataclass(frozen=True)
class Finding:
    """One problem: where, what kind, what is wrong and how to fix it."""

    file: str
    line: int
    column: int
    kind: str  # error, shadowed, disagree, condition, lookup, template, region, ocr, pixels,
    # basic
    message: str
    fix: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.location}: {self.message}{fix}"

    def as_json(self) -> dict:
        return asdict(self)


def _from_problem(problem: Problem) -> Finding:
    return Finding(problem.file, problem.line, problem.column, "error", problem.message,
                   problem.fix)


def lint(specs: Sequence[str]) -> list[Finding]:
    """Every problem of the composition of ``specs`` (built-in names or paths, in order)."""
    try:
        documents = load_documents(specs)
    except ProfileError as exc:
        return [_from_problem(p) for p in exc.problems]
    findings: list[Finding] = []
    alive: set[tuple] | None = None
    profile = None
    composition = Composition.of(documents)
    exclusive = _exclusive(composition)
    try:
        profile = load_profiles(specs)
        alive = {_where(r) for r in profile.all_rules()}
    except ProfileError as exc:  # e.g. options that exclude each other
        findings.extend(_from_problem(p) for p in exc.problems)
    competing = competing_rules(composition, alive, exclusive)
    if exclusive and len(competing.excluded):
        # One conflict, reported once: not each of the attributes the two options decide
        # differently because they exclude each other.
        findings = [dataclasses.replace(f, message=(
            f"{f.message}; they disagree on {len(competing.excluded)} attributes, "
            "not listed one by one")) if f.message.startswith(EXCLUSIVE_MESSAGE) else f
            for f in findings]
    findings.extend(competing)
    if profile is not None:
        findings.extend(_template_reads(composition, profile))
    findings.extend(_condition_values(composition))
    findings.extend(_lookup_tables(composition))
    findings.extend(_private_vrs(composition))
    findings.extend(_pixel_rules(composition, profile))
    if profile is not None:
        findings.extend(_pixel_tools(composition, profile))
        findings.extend(_without_basic(composition, profile))
    order = {doc.path: i for i, doc in enumerate(documents)}
    return sorted(findings, key=lambda f: (order.get(f.file, len(order)), f.file, f.line,
                                           f.column, f.message))


def _where(rule: Rule) -> tuple[str, int, int]:
    return (rule.source.file, rule.source.line, rule.source.column)


def _selector(rule: Rule, key: tuple) -> str:
    """The selector as written, with the tag when it was written as a keyword."""
    if key[0] == "tag" and not rule.selector.startswith("("):
        return f"{rule.selector} {tag_text(key[1])}"
    return rule.selector


def _rule_text(rule: Rule) -> str:
    """How a rule reads in a fix: '- {attribute: X, action: K}'."""
    if rule.selector.startswith("any unlisted"):
        return ""
    if rule.selector.endswith(" (every element)"):
        selector = f"private: {{creator: {rule.selector.rsplit(' (', 1)[0]}}}"
    elif " (" in rule.selector and rule.selector.endswith(")") and ",xx" in rule.selector:
        creator, tag = rule.selector.rsplit(" ", 1)
        selector = f"private: {{creator: {creator}, tag: '{tag}'}}"
    elif rule.selector.startswith("("):
        selector = f"attribute: '{rule.selector}'"
    else:
        selector = f"attribute: {rule.selector}"
    extra = ""
    if rule.within:
        extra += f", within: {rule.within}"
    if rule.when:
        pairs = ", ".join(f"{keyword_of(tag)}: [{', '.join(sorted(values))}]"
                          for tag, values in rule.when)
        extra += f", when: {{{pairs}}}"
    action = rule.action
    if action == "replace":
        action += (f", value: {rule.value!r}" if rule.template is None
                   else f", template: {rule.template!r}")
    return f"- {{{selector}{extra}, action: {action}}}"


@dataclass(frozen=True)
class Disagreement:
    """Two profiles, neither extending the other, setting different actions for the same
    elements under the same conditions; ``later`` wins by the order of the composition."""

    key: tuple
    earlier: Rule
    later: Rule
    winner: Rule
    earlier_doc: int
    later_doc: int


class Findings(list):
    """Findings, with the disagreements left out because their two profiles exclude each
    other (reported once, by the loader's error)."""

    excluded: list[Disagreement]


def _exclusive(composition: Composition) -> set[int]:
    """The documents of two options that exclude each other (PS3.15 E.3.6: full dates and
    modified dates), which the loader refuses to compose; empty when there is no such pair."""
    temporal = {i: doc.data.get("temporal") for i, doc in enumerate(composition.documents)
                if doc.data.get("temporal") in ("UNMODIFIED", "MODIFIED")}
    return set(temporal) if len(set(temporal.values())) > 1 else set()


def competing_rules(composition: Composition, alive: set[tuple] | None = None,
                    exclusive: set[int] = frozenset()) -> Findings:
    """Shadowed rules within a file and disagreements between sibling profiles, except those
    between two ``exclusive`` documents."""
    findings = Findings()
    shadows, disagreements = analyse(composition, alive)
    findings.excluded = [d for d in disagreements
                         if {d.earlier_doc, d.later_doc} <= exclusive]
    disagreements = [d for d in disagreements if d not in findings.excluded]
    documents = composition.documents
    for rule, later in shadows:
        same = effect(rule) == effect(later)
        what = "repeats" if same else "is replaced by"
        if not later.conditional and rule.conditional:
            message = (f"the conditional rule for {rule.selector} never applies: the "
                       f"unconditional rule for it at line {later.source.line} replaces it")
            fix = (f"move this rule below line {later.source.line}, so that it is tried "
                   "first and the unconditional rule is the fallback")
        else:
            message = (f"the rule for {rule.selector} never applies: it {what} the rule at "
                       f"line {later.source.line} ({describe_action(later)}), which has the "
                       "same selector and conditions")
            fix = ("delete this rule" if same else
                   "delete the rule that should not apply, or give the two rules different "
                   "conditions (when/within)")
        findings.append(Finding(rule.source.file, rule.source.line, rule.source.column,
                                "shadowed", message, fix))
    for d in disagreements:
        earlier_doc, later_doc = documents[d.earlier_doc], documents[d.later_doc]
        both_options = composition.is_builtin(d.earlier_doc) and composition.is_builtin(
            d.later_doc)
        who = "options" if both_options else "profiles"
        selector = _selector(d.later, d.key)
        message = (f"{who} {earlier_doc.name} and {later_doc.name} disagree on {selector}: "
                   f"{describe_action(d.earlier)} ({d.earlier.source}) vs "
                   f"{describe_action(d.later)} ({d.later.source}); {later_doc.name} wins "
                   "only by coming later")
        if d.winner is not d.later:
            message += f" (and {describe_action(d.winner)} at {d.winner.source} applies)"
        root = composition.entry_point(d.later_doc)
        decide = _rule_text(d.later)
        fix = ("decide it in this profile" + (f": add '{decide}' (or the action you want) to "
                                             "its rules" if decide else ""))
        if root != d.later_doc and not composition.is_builtin(root):
            root_doc = documents[root]
            line, column = root_doc.data.value_marks.get(
                "extends", (root_doc.data.line, root_doc.data.column))
            findings.append(Finding(root_doc.path, line, column, "disagree", message, fix))
        else:
            findings.append(Finding(d.later.source.file, d.later.source.line,
                                    d.later.source.column, "disagree", message,
                                    fix.replace("this profile", "a profile that extends both")))
    return findings


def analyse(composition: Composition, alive: set[tuple] | None = None
            ) -> tuple[list[tuple[Rule, Rule]], list[Disagreement]]:
    """(shadowed rule, the later rule of the same file that replaces it) pairs, and the
    disagreements between sibling profiles that no profile extending both decides.

    A later rule replaces an earlier one for the same selector when it has the same conditions
    or none (see ``Rule.condition_key`` and ``Profile.by_tag``). With ``alive``, the sources of
    the rules the loader kept, only rules the loader actually dropped are reported.
    """
    by_key: dict[tuple, list[tuple[int, Rule]]] = defaultdict(list)
    for i, doc in enumerate(composition.documents):
        for key, rule in doc.rules:
            by_key[key].append((i, rule))
    shadows: list[tuple[Rule, Rule]] = []
    disagreements: list[Disagreement] = []
    for key, rules in by_key.items():
        for position, (doc_index, rule) in enumerate(rules):
            later = _replacer(rules, position)
            if later is None:
                continue
            if alive is not None and _where(rule) in alive:
                continue
            later_doc, later_rule = rules[later]
            if later_doc == doc_index:
                shadows.append((rule, later_rule))
                continue
            if composition.extends(later_doc, doc_index):
                continue  # an override of what it extends: the point of extending
            if effect(rule) == effect(later_rule):
                continue
            final = later
            while (step := _replacer(rules, final)) is not None:
                final = step
            winner_doc, winner = rules[final]
            if composition.extends(winner_doc, doc_index) and composition.extends(
                    winner_doc, later_doc):
                continue  # decided by a profile that extends both
            disagreements.append(Disagreement(key, rule, later_rule, winner, doc_index,
                                              later_doc))
    return shadows, disagreements


def _replacer(rules: list[tuple[int, Rule]], position: int) -> int | None:
    """The position of the first later rule that replaces the rule at ``position``."""
    rule = rules[position][1]
    for later in range(position + 1, len(rules)):
        candidate = rules[later][1]
        if not candidate.conditional or candidate.condition_key == rule.condition_key:
            return later
    return None


# --- values the loader does not check ---------------------------------------------------------

def _raw_rules(document) -> dict[tuple[int, int], Located]:
    """The rule mappings of a document as written, by (line, column)."""
    raw = document.data.get("rules")
    if not isinstance(raw, list):
        return {}
    return {(r.line, r.column): r for r in raw if isinstance(r, Located)}


def _invalid(vr: str, value: str) -> str | None:
    """Why a value is not valid for a VR, or None if it is. Binary numbers (US, FL, ...) are
    compared as their text, so they are checked as numbers written out."""
    try:
        if vr in BINARY_NUMBER_VRS:
            number = (float if vr in ("FL", "FD") else int)(value)
            validate_value(vr, number, 2)
        else:
            validate_value(vr, value, 2)  # 2: raise
    except (ValueError, TypeError) as exc:
        return str(exc).split(". Please see")[0].rstrip(".")
    return None


def _condition_values(composition: Composition) -> list[Finding]:
    """'when' values that the attribute's VR cannot hold never match any instance."""
    findings = []
    for doc in composition.documents:
        raw_rules = _raw_rules(doc)
        for _key, rule in doc.rules:
            if not rule.when:
                continue
            raw = raw_rules.get((rule.source.line, rule.source.column))
            findings.extend(_condition_findings(doc.path, rule.source, raw, "when", rule.when))
    return findings


def _condition_findings(file: str, source: Source, raw: Located | None, what: str,
                        conditions: Iterable[tuple[int, Iterable[str]]]) -> list[Finding]:
    """Findings for the (tag, values) conditions written under ``raw[what]``."""
    written = raw.get(what) if raw is not None else None
    findings = []
    for tag, values in conditions:
        info = standard.element_by_tag(tag)
        if info is None:
            continue
        where = (source.line, source.column)
        if isinstance(written, Located) and info.keyword in written.value_marks:
            where = written.value_marks[info.keyword]
        findings.extend(_value_findings(file, where, f"'{what}'", info.keyword, info.vr,
                                        values))
    return findings


def _value_findings(file: str, where: tuple[int, int], what: str, keyword: str, vr: str,
                    values: Iterable[str]) -> list[Finding]:
    """A condition on a value the attribute cannot hold never holds."""
    vr = vr.split("/")[0]
    if vr in ("SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return [Finding(file, *where, "condition",
                        f"{what} on {keyword} can never match: its VR is {vr}, which has no "
                        "text value to compare", "condition on a text or number attribute")]
    findings = []
    for value in sorted(values):
        if value == "":
            continue  # an absent or empty attribute
        reason = _invalid(vr, value)
        if reason:
            fix = ("write the value as it appears in files"
                   + (f", e.g. {value.upper()!r}" if vr == "CS" else ""))
            findings.append(Finding(
                file, *where, "condition",
                f"{what} value {value!r} is not a valid {vr} value for {keyword}, so the rule "
                f"never applies ({reason})", fix))
    return findings


def _template_reads(composition: Composition, profile) -> list[Finding]:
    """Templates reading a field that a template writes may read its original value."""
    findings = []
    alive = {_where(r) for r in profile.all_rules()}
    for doc in composition.documents:
        raw_rules = _raw_rules(doc)
        for _key, rule in doc.rules:
            if rule.template is None or _where(rule) not in alive:
                continue
            for name in rule.template_fields:
                info = standard.element_by_keyword(name) if name != "hash" else None
                if info is None:
                    continue
                writers = [r for r in profile.rules_for_tag(info.tag) if r.template is not None]
                if not writers:
                    continue
                raw = raw_rules.get((rule.source.line, rule.source.column))
                where = (raw.value_marks["template"] if raw is not None
                         else (rule.source.line, rule.source.column))
                findings.append(Finding(
                    doc.path, *where, "template",
                    f"the template of {rule.selector} reads {{{name}}}, which a template also "
                    f"writes ({writers[0].source}): templates are rendered one after another, "
                    f"so it may read {name}'s original value",
                    f"give {name} a lookup or a fixed value, or use {{hash}} here"))
    return findings


def _pixel_rules(composition: Composition, profile: Profile | None) -> list[Finding]:
    """Pixel rules: match values the attribute cannot hold, regions or frames outside the
    image the match pins (Rows, Columns, NumberOfFrames), and rules an earlier-tried rule with
    the same match hides."""
    findings = []
    for doc in composition.documents:
        raw_rules = _raw_pixel_rules(doc)
        for rule in doc.pixel_rules:
            raw = raw_rules.get((rule.source.line, rule.source.column))
            findings.extend(_condition_findings(doc.path, rule.source, raw, "match", (
                (condition.tag, condition.values) for condition in rule.match)))
            findings.extend(_regions_outside(doc.path, rule))
    if profile is not None:
        tried: dict[frozenset, PixelRule] = {}
        for rule in profile.pixels.rules:
            same = tried.setdefault(frozenset(rule.match), rule)
            if same is not rule:
                findings.append(Finding(
                    rule.source.file, rule.source.line, rule.source.column, "shadowed",
                    f"pixel rule {rule.name!r} never applies: rule {same.name!r} "
                    f"({same.source}) has the same match and is tried first",
                    "delete one of them, or make the matches differ"))
    return findings


def _pixel_tools(composition: Composition, profile: Profile) -> list[Finding]:
    """The pixel library and Tesseract, where the profile needs them: without them every
    instance the profile would clean is rejected."""
    pixels = profile.pixels
    if not (pixels.rules or pixels.ultrasound_regions != "off"):
        return []
    try:
        from deid.pixels import ocr_available
    except ImportError as exc:
        doc = _last_setting(composition, "rules") or _last_setting(composition,
                                                                   "ultrasound_regions")
        where = doc.data.key_marks["pixels"]
        return [Finding(doc.path, *where, "pixels",
                        f"cleaning pixels needs the 'pixels' extra ({exc.name} is missing): "
                        "every instance to clean would be rejected (pixels_unavailable)",
                        "pip install 'deid-pipeline[pixels]'")]
    if pixels.ocr == "off" or ocr_available():
        return []
    doc = _last_setting(composition, "ocr")
    where = doc.data["pixels"].value_marks["ocr"]
    return [Finding(doc.path, *where, "ocr",
                    f"ocr: {pixels.ocr} needs Tesseract, which is not installed here: every "
                    "instance to clean would be rejected (ocr_unavailable)",
                    "install pytesseract and the tesseract program (Debian: tesseract-ocr), "
                    "or set 'ocr: off'")]


def _without_basic(composition: Composition, profile: Profile) -> list[Finding]:
    """A composition without the built-in basic profile: the table's rows, the unlisted policy
    and the private and burned-in defaults are all missing, and its outputs do not say Patient
    Identity Removed (PS3.15 E.1.1, E.2)."""
    if profile.basic:
        return []
    findings = []
    for index in composition.roots:
        doc = composition.documents[index]
        where = doc.data.key_marks.get("extends", (doc.data.line, doc.data.column))
        findings.append(Finding(
            doc.path, *where, "basic",
            f"{doc.name} does not extend basic: only its own rules apply, everything else is "
            "kept, and outputs are not marked Patient Identity Removed (PS3.15 E.2)",
            "add 'extends: [basic]' (then the options you need)"))
    return findings


def _last_setting(composition: Composition, key: str):
    """The last document whose pixels section sets ``key`` (the one that decides it)."""
    return next((doc for doc in reversed(composition.documents)
                 if isinstance(doc.data.get("pixels"), dict) and key in doc.data["pixels"]),
                None)


def _raw_pixel_rules(document) -> dict[tuple[int, int], Located]:
    pixels = document.data.get("pixels")
    raw = pixels.get("rules") if isinstance(pixels, dict) else None
    if not isinstance(raw, list):
        return {}
    return {(r.line, r.column): r for r in raw if isinstance(r, Located)}


def _pinned(rule: PixelRule, keyword: str) -> int | None:
    """The smallest value a rule's match allows for a number attribute; None: not pinned."""
    for condition in rule.match:
        if condition.keyword == keyword and condition.pattern is None:
            numbers = [int(v) for v in condition.values if v.isdigit()]
            if numbers and len(numbers) == len(condition.values):
                return min(numbers)
    return None


def _regions_outside(file: str, rule: PixelRule) -> list[Finding]:
    rows, columns = _pinned(rule, "Rows"), _pinned(rule, "Columns")
    frames = _pinned(rule, "NumberOfFrames")
    findings = []
    for region in rule.blank:
        outside = []
        if columns is not None and region.left + region.width > columns:
            outside.append(f"reaches column {region.left + region.width} of {columns}")
        if rows is not None and region.top + region.height > rows:
            outside.append(f"reaches row {region.top + region.height} of {rows}")
        if frames is not None and region.frames and max(region.frames) > frames:
            outside.append(f"names frame {max(region.frames)} of {frames}")
        if outside:
            findings.append(Finding(
                file, region.source.line, region.source.column, "region",
                f"region {region} of pixel rule {rule.name!r} {' and '.join(outside)}: it is "
                "outside the image its match pins", "measure the region on an image of the "
                "device; left + width <= Columns, top + height <= Rows"))
    return findings


def private_vr(creator: str, group: int, offset: int) -> tuple[str, str] | None:
    """(VR, where it comes from) of a creator's private element in pydicom's private
    dictionary, or None."""
    from pydicom.datadict import private_dictionary_VR

    try:
        return private_dictionary_VR((group << 16) | 0x1000 | offset, creator), \
            "pydicom's private dictionary"
    except KeyError:
        return None


def _private_vrs(composition: Composition) -> list[Finding]:
    """A private rule whose action cannot suit the element's VR (its 'vr:', else pydicom's
    private dictionary): a UID written into an LO, a date shift on a number. The engine removes
    such an element (fail closed), which is seldom what the rule meant."""
    findings = []
    for index, doc in enumerate(composition.documents):
        if composition.is_builtin(index):
            continue  # generated from the Standard's and TCIA's tables, which fix the VRs
        for key, rule in doc.rules:
            if key[0] != "private" or key[3] == ANY_PRIVATE:
                continue
            known = ((rule.vr, "its 'vr'") if rule.vr is not None
                     else private_vr(key[1], key[2], key[3]))
            allowed = ACTION_VRS.get(rule.action)
            if known is None or allowed is None:
                continue
            vr, origin = known
            if set(vr.split("/")) & allowed:
                if rule.value is not None and "/" not in vr and _invalid(vr, rule.value):
                    findings.append(Finding(
                        rule.source.file, rule.source.line, rule.source.column, "vr",
                        f"the value of the rule for {rule.selector} is not a valid {vr} value "
                        f"({origin} says {vr})", f"write a value the VR {vr} allows"))
                continue
            findings.append(Finding(
                rule.source.file, rule.source.line, rule.source.column, "vr",
                f"action {rule.action} cannot suit {rule.selector}: its VR is {vr} ({origin}), "
                "so the engine removes the element instead (fail closed)",
                f"choose an action its VR ({vr}) takes: keep, remove, empty or dummy; or "
                "check the creator and the tag"))
    return findings


def _selector_vr(key: tuple) -> str | None:
    if key[0] == "private":
        return None
    info = standard.element_by_tag(key[1] if key[0] == "tag" else key[2])
    return info.vr.split("/")[0] if info else None


def _lookup_tables(composition: Composition) -> list[Finding]:
    """Replacements the attribute cannot hold, and replacements shared by several originals."""
    findings = []
    for doc in composition.documents:
        raw_rules = _raw_rules(doc)
        for key, rule in doc.rules:
            if rule.lookup is None:
                continue
            raw = raw_rules.get((rule.source.line, rule.source.column))
            where = raw.value_marks["file"] if raw is not None else (rule.source.line,
                                                                     rule.source.column)
            lines = _lookup_lines(rule, raw)
            name = Path(rule.lookup.file).name
            vr = _selector_vr(key)
            if vr is not None:
                for original, replacement in rule.lookup.table.items():
                    reason = _invalid(vr, replacement)
                    if reason:
                        line = lines.get(original, "?")
                        findings.append(Finding(
                            doc.path, *where, "lookup",
                            f"lookup file {name} line {line}: the replacement is not a valid "
                            f"{vr} value for {rule.selector} ({reason})",
                            f"shorten or correct the replacement on line {line} of {name}"))
            originals_of: dict[str, list[str]] = defaultdict(list)
            for original, replacement in rule.lookup.table.items():
                if replacement:
                    originals_of[replacement].append(original)
            for originals in originals_of.values():
                if len(originals) > 1:
                    numbers = sorted(lines.get(o, 0) for o in originals)
                    shown = ", ".join(str(n) for n in numbers)
                    findings.append(Finding(
                        doc.path, *where, "lookup",
                        f"lookup file {name}: lines {shown} map different original values to "
                        f"the same replacement, so their instances would look like one "
                        f"subject's", "give each original value its own replacement"))
    return findings


def _lookup_lines(rule: Rule, raw: Located | None) -> dict[str, int]:
    """Original value -> line number in the lookup file (for messages; values not shown)."""
    assert rule.lookup is not None
    try:
        with open(rule.lookup.file, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError:
        return {}
    if not rows:
        return {}
    header = rows[0]
    column = raw.get("from_column", header[0]) if raw is not None else header[0]
    index = header.index(column) if column in header else 0
    return {row[index].strip(): number for number, row in enumerate(rows[1:], start=2)
            if len(row) > index}

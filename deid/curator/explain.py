"""`deid explain`: for one instance, what the profile does to every element, and why.

The engine records a ``Decision`` per element as it goes (``deidentify_bytes(trace=...)``), in
document order: an element, then the elements of its items when it descends into them. Walking
the original data set in the same order pairs each decision with its element, which gives each
one its item indices and its private creator; the result is then read from the de-identified
output itself, at the same position, so it shows exactly what would be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from deid import standard
from deid.curator.composition import rule_json
from deid.curator.diff import diff_datasets
from deid.curator.elements import (
    Node,
    comparable,
    display,
    element_name,
    find,
    is_empty,
    is_private_creator,
    path_text,
    walk,
)
from deid.curator.why import Context, reasons
from deid.engine import Decision, Rejection, deidentify_bytes, read_dataset
from deid.engine.core import Rejected, original_values, pixel_plan
from deid.keys import SecretKey
from deid.profile.loader import ProfileDocument
from deid.profile.model import COMPOUND, PixelRule, Profile, Rule
from deid.standard import tag_text

PIXEL_DATA = 0x7FE00010

RESULTS = ("kept", "changed", "emptied", "removed", "added", "not written")


def shown_name(path: str, name: str) -> str:
    """'Seq[0]>(0029,1023)' with name 'ACME (0029,xx23)' -> 'Seq[0]>ACME (0029,xx23)'."""
    if ">" not in path:
        return name
    return f"{path.rsplit('>', 1)[0]}>{name}"


@dataclass
class Row:
    """One element: what was decided, by which rule, with what result."""

    path: str
    tag: int
    name: str
    vr: str
    action: str  # as applied (compound codes resolved); '-' where no decision was recorded
    rule: Rule | None
    note: str  # why, where no rule decided or the action differs from the rule's
    result: str  # one of RESULTS
    before: str | None
    after: str | None
    why: list[str] = field(default_factory=list)  # with explain(why=...): the reasons

    @property
    def shown_name(self) -> str:
        """The path, its last step named as a private element is (with its creator)."""
        return shown_name(self.path, self.name)

    @property
    def decided_by(self) -> str:
        if self.rule is None:
            return self.note
        text = f"{self.rule.source.file}:{self.rule.source.line}"
        if self.rule.selector.startswith("any unlisted"):
            text += f" ({self.rule.selector})"
        if self.note:
            text += f"; {self.note}"
        return text

    def as_json(self) -> dict:
        return {"path": self.path, "tag": tag_text(self.tag), "name": self.name, "vr": self.vr,
                "action": self.action, "rule": rule_json(self.rule) if self.rule else None,
                "note": self.note or None, "result": self.result, "before": self.before,
                "after": self.after, "why": self.why}


@dataclass
class Explanation:
    """What explain found for one instance."""

    profiles: tuple[str, ...]
    key_origin: str
    rows: list[Row] = field(default_factory=list)
    rejection: Rejection | None = None
    aligned: bool = True  # False: item indices and creators could not be recovered
    pixels: str = ""  # what happens to the pixels, and why (PS3.15 E.3.1)
    # The pixel rules tried, in order, up to the one that matches: (rule, the keyword of its
    # first condition that does not hold, or None where the rule matches).
    pixel_rules: list[tuple[PixelRule, str | None]] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.rejection is None

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(RESULTS, 0)
        for row in self.rows:
            counts[row.result] += 1
        return {k: v for k, v in counts.items() if v}


def explain(data: bytes, profile: Profile, key: SecretKey, *, show_values: bool = False,
            documents: list[ProfileDocument] | None = None) -> Explanation:
    """De-identify in memory with a trace and explain every element. Writes nothing.
    With the composition's ``documents`` (``load_documents``), each row also says why
    (``Row.why``)."""
    explanation = Explanation(profile.names, key.origin)
    try:
        original = read_dataset(data)
    except Rejected as exc:
        explanation.rejection = Rejection(exc.reason, exc.message)
        return explanation
    explanation.pixels, explanation.pixel_rules = _pixels(original, profile)
    trace: list[Decision] = []
    result = deidentify_bytes(data, profile, key, trace=trace)
    output: Dataset | None = None
    if isinstance(result, Rejection):
        explanation.rejection = result
    else:
        output = read_dataset(result.data)
    context = None
    if documents is not None:
        context = Context.of(profile, documents, standard.iod_of_sop_class(
            str(original.get("SOPClassUID", "") or "")), original_values(original, profile))
    pairs = _pair(original, trace)
    if pairs is None:
        explanation.aligned = False
        explanation.rows = [_unpaired_row(d, profile, show_values) for d in trace
                            if d is not None]
        if context is not None:
            for row, decision in zip(explanation.rows, (d for d in trace if d is not None),
                                     strict=True):
                row.why = reasons(context, decision, row.result, None)
    else:
        results: dict[str, str] = {}
        for node, decision, _descended, enclosing in pairs:
            if enclosing is not None:
                row = _enclosed_row(node, enclosing, results.get(enclosing, "removed"), output,
                                    show_values)
            else:
                row = _row(node, decision, output, profile, show_values)
                if context is not None and decision is not None:
                    row.why = reasons(context, decision, row.result, node.creator)
            if context is not None and not row.why and row.note:
                row.why = [row.note]
            results[row.path] = row.result
            explanation.rows.append(row)
    if output is not None:
        for change in diff_datasets(original, output, show_values=show_values,
                                    include_meta=False):
            if change.change == "added":
                explanation.rows.append(Row(
                    change.path, change.tag, change.name, change.vr, "add", None,
                    "added by de-identification (PS3.15 E.1.1, E.3.1, E.3.6 markers)", "added",
                    None, change.after))
    return explanation


def _pixels(original: Dataset, profile: Profile
            ) -> tuple[str, list[tuple[PixelRule, str | None]]]:
    """What the profile does to the pixels, and the pixel rules tried on the way."""
    try:
        summary = pixel_plan(original, profile).describe()
    except Rejected as exc:
        summary = f"not written: {exc.reason}: {exc.message}"
    read = original_values(original, profile)
    tried: list[tuple[PixelRule, str | None]] = []
    for rule in profile.pixels.rules:
        failed = next((c.keyword for c in rule.match if not c.holds(read)), None)
        tried.append((rule, failed))
        if failed is None:
            break
    return summary, tried


def _pair(original: Dataset, trace: list[Decision | None]
          ) -> list[tuple[Node, Decision | None, bool, str | None]] | None:
    """Each element of the original with its decision, whether the engine went into its items,
    and, for an element inside a sequence the engine removed or emptied whole (so it has no
    decision of its own), the path of that sequence. None if they do not line up.

    A rejection stops the engine part-way: the trace then ends early, and the elements it was
    inside when it stopped have no decision (None)."""
    pairs: list[tuple[Node, Decision | None, bool, str | None]] = []
    position = 0
    descend: dict[tuple, bool] = {}
    enclosing: dict[tuple, str] = {}  # sequence not gone into -> the outermost such sequence
    for node in walk(original):
        parent = node.position[:-1]
        if parent:
            sequence = parent[:-1] + ((parent[-1][0], None),)
            if not descend.get(sequence, False):
                outer = enclosing.get(sequence, path_text(sequence))
                enclosing[node.position] = outer
                pairs.append((node, None, False, outer))
                continue
        if position >= len(trace):
            break  # a rejection stopped the engine here
        decision = trace[position]
        if decision is not None and decision.tag != node.tag:
            return None
        position += 1
        following = trace[position] if position < len(trace) else None
        descend[node.position] = node.element.VR == "SQ" and (
            decision is None or (following is not None and following.path.startswith(
                decision.path + ">")))
        pairs.append((node, decision, descend[node.position] and decision is not None, None))
    if position != len(trace):
        return None
    return pairs


def _enclosed_row(node: Node, sequence: str, sequence_result: str, output: Dataset | None,
                  show_values: bool) -> Row:
    """An element inside a sequence that the engine removed or emptied as a whole."""
    after = find(output, node.position) if output is not None else None
    if output is None:
        result = "not written"
    elif after is None:
        result = "removed"
    else:  # not expected: the engine did not visit it, yet it is in the output
        result = "kept" if comparable(after) == comparable(node.element) else "changed"
    return Row(node.path, node.tag, node.name, node.element.VR, "-", None,
               f"inside {sequence}, {sequence_result} as a whole", result,
               display(node.element, show_values), display(after, show_values))


def _row(node: Node, decision: Decision | None, output: Dataset | None, profile: Profile,
         show_values: bool) -> Row:
    before = display(node.element, show_values)
    if decision is None:
        return Row(node.path, node.tag, node.name, node.element.VR, "-", None,
                   "processing stopped inside this element (see the rejection)",
                   "not written", before, None)
    after_element = find(output, node.position) if output is not None else None
    if output is None:
        result, after = "not written", None
    elif after_element is None:
        result, after = "removed", None
    else:
        after = display(after_element, show_values)
        if is_empty(after_element) and not is_empty(node.element):
            result = "emptied"
        elif comparable(after_element) == comparable(node.element) and (
                after_element.VR == node.element.VR):
            result = "kept"
        else:
            result = "changed"
    note = _note(decision, node.tag, profile, result, node.creator)
    return Row(node.path, node.tag, node.name, decision.vr, decision.action, decision.rule,
               note, result, before, after)


def _unpaired_row(decision: Decision, profile: Profile, show_values: bool) -> Row:
    """A decision shown on its own (no item indices): values from the trace, masked."""
    def shown(text: str | None) -> str | None:
        if text is None or text.startswith("<"):  # absent, or a sequence or binary length
            return text
        if show_values:
            return repr(text)
        return f"<{len(text)} char{'s' if len(text) != 1 else ''}>" if text else "<empty>"

    result = "removed" if decision.after is None else (
        "kept" if decision.after == decision.before else "changed")
    return Row(decision.path, decision.tag, element_name(decision.tag), decision.vr,
               decision.action, decision.rule,
               _note(decision, decision.tag, profile, result), result,
               shown(decision.before), shown(decision.after))


def _note(decision: Decision, tag: int, profile: Profile, result: str,
          creator: str | None = "") -> str:
    """Why, in words, where the rule column alone would not say it."""
    rule, action = decision.rule, decision.action
    group, element = tag >> 16, tag & 0xFFFF
    if rule is None:
        if tag == PIXEL_DATA and result == "changed":
            return "pixels cleaned (PS3.15 E.3.1; see pixels above)"
        if action == "K" and result == "changed":  # only cleaning pixels changes what is kept
            return "follows the cleaned pixels' new encoding (PS3.15 E.3.1)"
        if is_private_creator(tag):
            return ("private creator: kept while an element of its block is"
                    if result != "removed" else "private creator: no element of its block kept")
        if group % 2:
            if creator is None:
                return "private, without a private creator: nothing can say it is safe"
            if decision.vr == "SQ" and result != "removed" and profile.private == "remove":
                return "private sequence, no rule for it: opened, its elements decided one by " \
                       "one (PS3.15 E.3.10)"
            return f"private, no rule for it (private: {profile.private})"
        if element == 0 or group in (0x0000, 0x0002, 0x0004):
            return "group length, command or directory element (PS3.15 E.1.1)"
        if action == "D":
            return "no rule; inside a sequence being dummied"
        if action == "C":
            return "no rule; inside a sequence being cleaned"
        return "no rule names it"
    if rule.action in COMPOUND and action != rule.action:
        return f"{rule.action} -> {action} (the attribute's Type in this IOD)"
    if action == "X" and rule.action == "C" and (rule.allow is not None or rule.allow_patterns):
        return "value not in the allow-list"
    if action == "X" and rule.action not in ("X", "lookup") and rule.action not in COMPOUND:
        return f"{rule.action} cannot apply to this element's VR here: removed (fail closed)"
    if rule.action == "C" and result == "removed":
        return "binary data cannot be read for identifying text: removed"
    if rule.action == "lookup" and action != "lookup":
        return f"value not in the lookup file: missing -> {action}"
    return ""

"""Cleaning free text (action C on text): remove from it the identifying values of the same
instance, the values of the attributes the profile protects (PS3.15 E.3.5: "information ...
corresponding to the Attribute information specified to be removed ... shall also be
removed"), names in the ways people type them, and the identifiers the header does not hold
(deid/engine/detect.py). Text is compared in Unicode NFC, case-insensitively (case-folded)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from deid.engine.detect import detect, name_variants, normalized

MIN_TOKEN = 2  # shortest name component or value removed
MIN_WORD = 4  # shortest word of a longer value removed on its own
LONG_TEXT_VRS = frozenset({"ST", "LT", "UT"})  # paragraphs: only a copy of the whole is removed


def date_spellings(value: str) -> list[str]:
    """A DA (or the date part of a DT) in the spellings people type."""
    if len(value) < 8 or not value[:8].isdigit():
        return []
    y, m, d = value[:4], value[4:6], value[6:8]
    return [value[:8], f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{d}/{m}/{y}",
            f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{d}-{m}-{y}"]


def tokens_of(vr: str, value: str) -> list[str]:
    """The pieces of one identifying value worth searching for elsewhere."""
    value = value.strip()
    if not value:
        return []
    if vr in ("DA", "DT"):
        return date_spellings(value)
    if vr == "PN":
        parts = re.split(r"[\^=]", value)
        words = [w for part in parts for w in part.split()]
        variants = [v for group in value.split("=")
                    for v in name_variants(*[p.strip() for p in (group.split("^") + ["", ""])[:3]])]
        return [p.strip() for p in parts + words + variants if len(p.strip()) >= MIN_TOKEN]
    out = [value] if len(value) >= MIN_TOKEN else []
    if vr in LONG_TEXT_VRS:
        return out
    out += [w for w in re.split(r"[\s,;:/]+", value) if len(w) >= MIN_WORD]
    return out


def squeezed(text: str) -> str:
    """Runs of spaces and tabs, left where something was removed, as one space."""
    return re.sub(r"[ \t]{2,}", " ", text)


class Scrubber:
    """Removes a fixed set of identifying tokens from text, case-insensitively, whole words,
    and every identifier the detectors find."""

    def __init__(self, tokens: Iterable[str]):
        spelled = {normalized(t) for t in tokens if t}
        unique = sorted(spelled | {t.casefold() for t in spelled}, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, unique))
        self._pattern = (
            re.compile(f"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)
            if unique else None
        )

    def __call__(self, text: str) -> str:
        if not text:
            return text
        normal = normalized(text)
        spans = detect(normal)
        if self._pattern is not None:
            spans += [(m.start(), m.end(), "instance") for m in self._pattern.finditer(normal)]
        if not spans:
            return text
        kept, position = [], 0
        for start, stop, _ in sorted(spans):  # overlapping finds merge
            if start > position:
                kept.append(normal[position:start])
            position = max(position, stop)
        kept.append(normal[position:])
        return squeezed("".join(kept)).strip()

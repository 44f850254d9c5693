"""Leak search: the identifying values of the original, looked for in the output.

The values searched for are all the text of the original that no rule deliberately keeps, at
any depth (inside removed sequences too): whole values, names in their variants (components,
both orders, initials), dates in their spellings, UIDs that were replaced, and the identifiers
verification's own detection (deid/verify/detect.py, not the engine's) finds in free text;
of cleaned text, only those identifiers. They are looked for in the decoded text of every
element at every depth, kept private elements included, in Unicode NFC and case-folded, and in
the file's raw bytes (ASCII and the instance's character set) outside Pixel Data, whose bytes
the engine keeps identical by design (burned-in text is the pixel option's job, PS3.15 E.3.1).

To stay useful, it skips very short values and values the instance legitimately holds: the
original text of attributes the profile keeps, and what the engine inserts itself (dummy
values, the rules' replacement values and templates, the PS3.15 E.1.1 markers).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from deid import standard
from deid.engine.dummy import dummy_value
from deid.profile.model import Profile
from deid.standard import keyword_of, tag_text
from deid.verify.detect import dicom_date_forms, fold, identifiers, name_forms, name_words
from deid.verify.elements import element_at
from deid.verify.findings import LEAK, Finding

MIN_TEXT = 3  # shortest value searched for in decoded text
MIN_BYTES = 4  # shortest value searched for in raw bytes (random binary matches 3 letters)
MIN_WORD = 4  # shortest word of an identifying name searched for on its own
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
# The VRs whose values are text, and dates (verification's own lists, not the engine's).
TEXT_VRS = frozenset({"AE", "CS", "LO", "SH", "PN", "ST", "LT", "UT", "UC", "UR"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_NUMERIC = re.compile(r"^[0-9.]+$")


@dataclass(frozen=True)
class Token:
    """A piece of an original identifying value, and which attribute (and part) it came
    from: the finding names the source and the part, never the text. A strong token is an
    identifier in itself (a name, a date, an ID, a UID, a detected identifier); a weak one is
    text removed because it may hold one (a description): found in a code or a private
    creator, or only in raw bytes, it is a coincidence ("CHEST"), not a leak."""

    text: str
    source: str
    part: str
    strong: bool = True


def tokens_of_value(vr: str, value: str, source: str, cleaned: bool = False,
                    identifier: bool = True) -> list[Token]:
    """The pieces of one original value worth searching for; of a cleaned value only the
    identifiers found in it (the rest of its words may stay). ``identifier``: the whole
    value identifies (an ID), rather than being removed for what it may hold."""
    value = value.strip("\0 ")
    if not value:
        return []
    tokens = [Token(text, source, f"detected {found.kind}")
              for found in (identifiers(value) if vr in FREE_TEXT_VRS else [])
              for text in found.texts]
    if cleaned:
        return [t for t in tokens if len(t.text.strip()) >= MIN_TEXT]
    if vr in ("DA", "DT"):
        tokens += [Token(s, source, "date") for s in dicom_date_forms(value)]
    elif vr == "PN":
        tokens += [Token(value, source, "name")]
        tokens += [Token(form, source, "name") for form in name_forms(value)]
        tokens += [Token(word, source, "name word", False) for word in name_words(value)]
    else:
        tokens.append(Token(value, source, "value", identifier or vr == "UI"))
        if identifier and vr in ("LO", "SH"):
            # A name of several words ('Reichenbach General Hospital'): each word of it may be
            # typed alone, in text that is cleaned rather than removed.
            tokens += [Token(word, source, "word", False) for word in value.split()
                       if len(word) >= MIN_WORD and len(value.split()) > 1]
    return [t for t in tokens if len(t.text.strip()) >= MIN_TEXT]


def _pattern(texts: list, boundary: str | bytes) -> re.Pattern | None:
    """Whole-word alternation of str or bytes texts, longest first, case-insensitive. The
    boundary is a character class: numbers and UIDs are bounded by digits and dots, so a UID
    never matches inside another."""
    if not texts:
        return None
    ordered = sorted(set(texts), key=len, reverse=True)
    if isinstance(boundary, bytes):
        source = b"(?<![%b])(?:%b)(?![%b])" % (boundary, b"|".join(map(re.escape, ordered)),
                                              boundary)
        return re.compile(source, re.IGNORECASE)
    return re.compile(f"(?<![{boundary}])(?:{'|'.join(map(re.escape, ordered))})"
                      f"(?![{boundary}])", re.IGNORECASE)


class _Matcher:
    """Finds any of a set of tokens in text, case-insensitively and as whole words."""

    def __init__(self, tokens: list[Token]):
        self.by_text: dict[str, list[Token]] = {}
        for token in tokens:
            self.by_text.setdefault(fold(token.text), []).append(token)
        numeric = [t for t in self.by_text if _NUMERIC.match(t)]
        words = [t for t in self.by_text if not _NUMERIC.match(t)]
        self.patterns = [p for p in (_pattern(numeric, "0-9."), _pattern(words, r"\w"))
                         if p is not None]

    def find(self, text: str) -> Iterator[str]:
        text = fold(text)
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                yield match.group(0)


def _allowed(profile: Profile, kept: list[str]) -> list[str]:
    """Text the output may hold whatever the original said: what the profile keeps, and what
    the engine inserts (dummy values, the rules' values, the E.1.1 markers' texts)."""
    inserted = [v for v in map(dummy_value, sorted(TEXT_VRS | DATE_VRS)) if isinstance(v, str)]
    # Longitudinal Temporal Information Modified: any of its values (the engine's follows what
    # happened to each instance's dates).
    inserted += ["YES", "MODIFIED", "UNMODIFIED", "REMOVED", profile.description,
                 *profile.names]
    inserted += [t for c in profile.method_codes for t in (c.value, c.scheme, c.meaning)]
    for rule in profile.all_rules():
        inserted += [t for t in (rule.value, rule.template) if t]
        if rule.lookup is not None:
            inserted += list(rule.lookup.table.values())
    return kept + inserted


def _texts(dataset: Dataset, where: str) -> Iterator[tuple[str, str, bool]]:
    """(tag path, text, coded) of every text value at every depth; coded: a code string or
    a private creator, where only strong tokens count."""
    for tag in dataset.keys():  # noqa: SIM118
        element = element_at(dataset, tag)
        at = f"{where}{keyword_of(int(tag))} {tag_text(int(tag))}"
        if element.VR == "SQ":
            for index, item in enumerate(element.value or []):
                yield from _texts(item, f"{at}[{index}]>")
            continue
        value = element.value  # bytes when undecodable: searched as raw bytes
        # Codes, private elements (text a profile cleans or keeps) and the technical text the
        # unlisted policy keeps: only identifiers in them count, not a removed description's
        # words ('STANDARD' is a kernel and a series description).
        coded = (element.VR == "CS" or (int(tag) >> 16) % 2 == 1
                 or int(tag) in standard.reviewed_kept_tags())
        for v in value if isinstance(value, MultiValue | list | tuple) else [value]:
            if v is not None and not isinstance(v, bytes | int | float):
                yield at, str(v), coded


def _without_pixels(data: bytes) -> bytes:
    """The file with the Pixel Data value bytes blanked (same length, so offsets hold)."""
    dataset = dcmread(io.BytesIO(data), force=True)
    blob = bytearray(data)
    for tag in PIXEL_TAGS:
        if tag not in dataset:
            continue
        raw = dataset.get_item(tag)
        start = getattr(raw, "value_tell", None)
        if start is None or not isinstance(raw.value, bytes):
            continue
        blob[start:start + len(raw.value)] = bytes(len(raw.value))
    return bytes(blob)


def _encodings(output: Dataset) -> list[str]:
    """Python codecs of the instance's character set, ASCII's superset latin-1 always."""
    try:
        found = convert_encodings(output.get("SpecificCharacterSet"))
    except Exception:
        found = []
    return ["latin-1", *(e for e in found if e not in ("iso8859", "latin_1"))]


def find_leaks(tokens: list[Token], kept: list[str], output: Dataset, data: bytes,
               profile: Profile, technical: tuple[list[str], frozenset[str]] = ([], frozenset())
               ) -> list[Finding]:
    """Leak findings: each original identifying value found in the output's text or bytes.
    ``technical``: the original text of attributes kept as technical (the unlisted policy's
    reviewed keeps), legitimate but for the words of the instance's names and IDs (folded)."""
    matcher = _Matcher(tokens)
    if not matcher.patterns:
        return []
    # In codes and private elements only strong tokens count: searched for on their own, so
    # that a weak token's longer text ('Doe^Jane 4471', a removed value) does not hide one.
    strong = _Matcher([t for t in tokens if t.strong])
    allowed = _allowed(profile, kept)
    legitimate = {hit for text in allowed for m in (matcher, strong) for hit in m.find(text)}
    texts, identity = technical
    legitimate |= {hit for text in texts for m in (matcher, strong) for hit in m.find(text)
                   if not set(re.split(r"[\s^=,.]+", hit)) & identity}
    findings: dict[tuple[str, str, str], Finding] = {}
    found_in_text: set[str] = set()
    for at, text, coded in _texts(output, ""):
        searcher = strong if coded else matcher
        for hit in searcher.find(text):
            if hit in legitimate:
                continue
            found = [t for t in searcher.by_text[hit] if t.strong or not coded]
            if found:
                found_in_text.add(hit)
            for token in found:
                findings.setdefault((token.source, token.part, at), Finding(
                    LEAK, "text", at, f"a {token.part} of the original {token.source} is in "
                                      "this element's text"))
    weak = {text for text, found in matcher.by_text.items() if not any(t.strong for t in found)}
    findings.update(_byte_leaks(matcher, legitimate | found_in_text | weak, output, data))
    return list(findings.values())


def _byte_leaks(matcher: _Matcher, skip: set[str], output: Dataset, data: bytes
                ) -> dict[tuple[str, str, str], Finding]:
    """Tokens in the raw bytes outside Pixel Data, in ASCII and the instance's encoding."""
    encodings = _encodings(output)
    encoded: dict[bytes, str] = {}
    for text in matcher.by_text:  # skipped ones too: the longest match at a place decides
        if len(text) < MIN_BYTES:
            continue
        for candidate in {text, *[t.text for t in matcher.by_text[text]]}:
            for encoding in encodings:
                try:  # strictly: a replacement character would match what it should not
                    encoded[candidate.encode(encoding)] = text
                except (UnicodeError, LookupError):
                    continue
    if not encoded:
        return {}
    blob = _without_pixels(data)
    numeric = [t for t in encoded if _NUMERIC.match(encoded[t])]
    words = [t for t in encoded if not _NUMERIC.match(encoded[t])]
    patterns = [p for p in (_pattern(numeric, b"0-9."), _pattern(words, b"0-9A-Za-z_"))
                if p is not None]
    by_lower = {k.lower(): v for k, v in encoded.items()}
    findings = {}
    matches = [m for pattern in patterns for m in pattern.finditer(blob)]
    for match in matches:
        text = by_lower.get(match.group(0).lower())
        if text is None or text in skip:
            continue
        where = f"file bytes at offset {match.start()}"
        for token in matcher.by_text[text]:
            findings.setdefault((token.source, token.part, "bytes"), Finding(
                LEAK, "bytes", where, f"a {token.part} of the original {token.source} is in "
                                      "the file's bytes outside any decoded text"))
    return findings

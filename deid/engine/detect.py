"""Identifiers in free text that the header does not hold (PS3.15 Table E.1-1a: C, clean,
means "replace with values of similar meaning known not to contain identifying information").

Patterns, no model: person names by their context (a title, a label, the caret of a DICOM
person name), phone and fax numbers, e-mail addresses, street addresses (the number with the
street, post boxes, ZIP codes after a state), dates in the common spellings, MRN- and
accession-like numbers, ages over 89 (PS3.15 E.1-1 and HIPAA Safe Harbor: ages over 89 are
identifying). Each detector was measured for recall on identifiers and false positives on real
series and study descriptors (docs/profiles.md, "What clean finds"); what a pattern would
also take from descriptors (`MR BRAIN`, `T2 3D`, `1/2 NEX`) is kept out by design.
"""

from __future__ import annotations

import re
import unicodedata

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_MONTH_NUMBER = r"(?:1[0-2]|0?[1-9])"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_STREET = (r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|"
           r"pl|way|terrace|ter|parkway|pkwy|highway|hwy|circle|cir|square|sq|alley|row|"
           r"crescent|close|trail|plaza)\.?")
_NAME_WORD = r"[A-Z][A-Za-z'\u2019-]+|[A-Z]\.?"
_TITLE = r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Doctor|Professor|Sr|Sra|Herr|Frau|Mme|Mlle)"
_LABEL = (r"(?:name|patient|pt|physician|doctor|referring|radiologist|technologist|tech|"
          r"operator|performed by|read by|reported by|dictated by|signed by|signed|"
          r"attending|resident|nurse|contact|requested by|ordered by|by)")
_SIGNED = (r"(?:performed by|read by|reported by|dictated by|signed by|signed|requested by|"
           r"ordered by|referred by|referring|attending)")

DETECTORS: dict[str, re.Pattern] = {
    "email": re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"),
    "date": re.compile(
        "|".join([
            rf"(?<![\d.-]){_DAY}(?P<a>[-/.]){_MONTH_NUMBER}(?P=a)(?:{_YEAR}|\d\d)(?!\d|[.-]\d)",
            rf"(?<![\d.-]){_MONTH_NUMBER}(?P<b>[-/.]){_DAY}(?P=b)(?:{_YEAR}|\d\d)(?!\d|[.-]\d)",
            rf"(?<![\d.-]){_YEAR}(?P<c>[-/.]){_MONTH_NUMBER}(?P=c){_DAY}(?!\d|[.-]\d)",
            rf"\b{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",
            rf"\b{_DAY}(?:st|nd|rd|th)?[\s-]*(?:of\s+)?{_MONTH}[\s,-]*(?:{_YEAR}|'?\d\d)\b",
            rf"\b{_MONTH}[\s-]+{_DAY}(?:st|nd|rd|th)?(?:[\s,-]+(?:{_YEAR}|'\d\d))?\b"
            rf"(?<![a-z]\s\d)(?<![a-z]\s\d\d)",
            rf"\b{_MONTH}[\s,-]*{_YEAR}\b",
        ]), re.IGNORECASE),
    "phone": re.compile(
        r"(?:\b(?:tel|phone|ph|fax|mobile|cell|pager|beeper)\b\.?\s*(?:no\.?|number|#)?\s*"
        r"[:#]?\s*\+?[\d(][\d\s().-]{5,}\d)"
        r"|(?:\+\d{1,3}[\s.-]?)?\(\d{2,4}\)\s*\d{3,4}[\s.-]?\d{3,4}\b"
        r"|(?:\+\d{1,3}[\s.-]?)?\b\d{3}[\s.-]\d{3}[\s.-]\d{4}\b"
        r"|\+\d{1,3}[\s.-]?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}\b"
        r"|\b0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4}\b", re.IGNORECASE),
    "address": re.compile(
        rf"\b\d{{1,6}}[A-Za-z]?(?:\s*-\s*\d+)?,?\s+(?:[NSEW]\.?\s+)?"
        rf"(?:[A-Za-z][A-Za-z0-9'.-]*\s+){{0,4}}?{_STREET}(?=\W|$)"
        r"|\b\d{1,5}[A-Za-z]?,?\s+(?:rue|chemin|quai|impasse|all[ée]e)\s+"  # '12 rue de Rivoli'
        r"(?:(?:de|du|des|la|le|les)\s+|d')?[^\W\d_][\w'-]*"
        r"|\b(?:p\.?\s?o\.?\s*box|post\s+office\s+box)\s*\d+"
        r"|\b(?:apt|apartment|suite|ste|unit)\.?\s*#?\s*\d+[a-z]?\b"
        r"|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"
        r"|\b[A-Z\u00c0-\u00dd][\w\u00df]+(?:stra(?:ss|\u00df)e|str\.|weg|gasse|platz|allee)"
        r"\s+\d+[a-z]?\b", re.IGNORECASE),
    "record_number": re.compile(
        r"(?<![\w-])(?:mrn|mr\s*#|mr\s*no|med(?:ical)?\s*rec(?:ord)?(?:\s*(?:no|number|#))?|"
        r"patient\s*id|pid|acc(?:ession)?(?:\s*(?:no|number|#))?|accn|account(?:\s*(?:no|#))?|"
        r"ssn|id|case|study\s*id|exam\s*(?:no|#)|order(?:\s*(?:no|#))?|ref(?:erence)?)(?=\W|$)"
        r"\.?\s*[:#=]?\s*(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,}"
        r"|\b\d{3}-\d{2}-\d{4}\b", re.IGNORECASE),
    "age": re.compile(
        r"\b(?:9\d|1[0-4]\d)\s*-?\s*(?:y/?o|yrs?|years?)(?:[\s-]*old)?\b"
        r"|\b(?:0?9\d|1[0-4]\d)Y\b"
        r"|\bage[ds]?\s*[:=]?\s*(?:9\d|1[0-4]\d)(?:\s*-?\s*(?:y/?o|yrs?|years?)"
        r"(?:[\s-]*old)?)?\b", re.IGNORECASE),
    "name": re.compile(
        rf"\b{_TITLE}\.?\s+(?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}}"
        rf"|(?i:\b{_LABEL})\s*[:=]\s*(?:{_NAME_WORD}|[A-Z]+)(?:,?\s+(?:{_NAME_WORD}|[A-Z]+)){{0,2}}"
        rf"|(?i:\b{_SIGNED})\s+(?:{_NAME_WORD}),?\s+(?:{_NAME_WORD})"),
}


def normalized(text: str) -> str:
    """NFC, so that a name typed with combining accents matches the header's."""
    return unicodedata.normalize("NFC", text)


def detect(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every identifier the patterns find, in NFC text."""
    return [(m.start(), m.end(), kind) for kind, pattern in DETECTORS.items()
            for m in pattern.finditer(text)]


def name_variants(family: str, given: str, middle: str = "") -> list[str]:
    """How a name is typed in text: both orders, with a comma, the given name as an initial
    (with or without a dot, glued to the family name or not), all three parts."""
    if not family or not given:
        return []
    initial = given[0]
    variants = [f"{given} {family}", f"{family} {given}", f"{family}, {given}",
                f"{family},{given}", f"{initial}. {family}", f"{initial}.{family}",
                f"{initial} {family}", f"{initial}{family}", f"{family} {initial}",
                f"{family}, {initial}", f"{family}, {initial}.", f"{family} {initial}.",
                f"{family}{initial}", f"{family}^{given}"]
    if middle:
        variants += [f"{given} {middle} {family}", f"{given} {middle[0]}. {family}",
                     f"{family}, {given} {middle}", f"{initial}{middle[0]}{family}"]
    return variants

"""Verification's own search for identifiers, written apart from the engine's cleaning
(deid/engine/detect.py) so that the two do not share blind spots: the engine matches patterns
over characters; this reads text as a list of words and numbers and judges each run of them.

- ``name_forms`` and ``date_forms``: the ways a header's name or date is typed in text;
- ``identifiers``: phone numbers, e-mail addresses, street addresses, dates, titled or
  labelled names, record numbers and ages over 89 found in a text, each as the text to search
  the output for (a date also in its other spellings).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass

MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
MONTHS["sept"] = 9
STREET_WORDS = {"street", "st", "avenue", "ave", "av", "road", "rd", "boulevard", "blvd", "lane",
                "ln", "drive", "dr", "court", "ct", "place", "pl", "way", "terrace", "parkway",
                "pkwy", "highway", "hwy", "circle", "square", "sq", "alley", "crescent", "close",
                "trail", "plaza", "row"}
STREET_ENDINGS = ("strasse", "straße", "str", "weg", "gasse", "platz", "allee", "laan", "straat",
                  "gatan", "vej", "rue")
# Street words that follow the house number and come before the street's name, as French
# addresses are written ('12 rue de Rivoli').
STREET_FIRST = {"rue", "chemin", "quai", "impasse", "allée", "allee"}
STREET_LINKS = {"de", "du", "des", "la", "le", "les"}
TITLES = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "doctor", "professor", "herr", "frau",
          "mme", "mlle", "sr", "sra"}
NAME_LABELS = {"name", "patient", "physician", "referring", "radiologist", "technologist",
               "operator", "attending", "resident", "nurse", "signed", "by", "contact"}
SIGNING = {"signed", "read", "dictated", "reported", "performed", "reviewed"}
NUMBER_LABELS = {"mrn", "mr#", "accession", "acc", "accn", "account", "ssn", "id", "pid",
                 "record", "case", "exam", "order", "ref", "reference"}
AGE_UNITS = {"yo", "y/o", "yr", "yrs", "year", "years", "y"}
# Words and numbers, with their positions; '@' and '.' inside a word keep e-mails whole.
_WORD = re.compile(r"[\w'@+-]+(?:[./][\w'@+-]+)*#?", re.UNICODE)
_PHONE_GAP = re.compile(r"[\s().-]{0,3}")


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int

    @property
    def folded(self) -> str:
        return self.text.casefold().rstrip(".")


def words(text: str) -> list[Word]:
    return [Word(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def fold(text: str) -> str:
    """The form texts are compared in: NFC, case-folded."""
    return unicodedata.normalize("NFC", text).casefold()


def date_forms(year: int, month: int, day: int) -> list[str]:
    """A date in the spellings people type (numeric in three orders, with month names)."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return []
    short = f"{year % 100:02d}"
    name, abbr = calendar.month_name[month], calendar.month_abbr[month]
    forms = []
    for y in (str(year), short):
        for m, d in ((f"{month:02d}", f"{day:02d}"), (str(month), str(day))):
            for sep in "/-.":
                forms += [f"{m}{sep}{d}{sep}{y}", f"{d}{sep}{m}{sep}{y}"]
        for month_word in (name, abbr):
            forms += [f"{day} {month_word} {y}", f"{day}-{month_word}-{y}",
                      f"{day:02d}-{month_word}-{y}", f"{month_word} {day}, {y}",
                      f"{month_word} {day} {y}"]
    for sep in ("", "-", "/", "."):
        forms.append(f"{year}{sep}{month:02d}{sep}{day:02d}")
    return forms


def dicom_date_forms(value: str) -> list[str]:
    """The spellings of a DA value (or the date of a DT)."""
    digits = value.strip()[:8]
    if len(digits) < 8 or not digits.isdigit():
        return []
    return date_forms(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def name_words(value: str) -> list[str]:
    """The words of a PN value's components of several words ('Van Dyke')."""
    return [w for group in value.split("=") for part in group.split("^")
            for w in part.split() if len(part.split()) > 1]


def name_forms(value: str) -> list[str]:
    """A PN value's components, and the whole name in the orders and abbreviations text uses
    (the given name as an initial, glued to the family name or not)."""
    forms = []
    for group in value.split("="):
        parts = [p.strip() for p in group.split("^")]
        forms += [p for p in parts if p]
        family, given, middle = (parts + ["", "", ""])[:3]
        if not (family and given):
            continue
        for first in (given, given[0], given[0] + "."):
            forms += [f"{first} {family}", f"{family} {first}", f"{family}, {first}",
                      f"{family},{first}", f"{first}{family}", f"{family}{first}"]
        if middle:
            forms += [f"{given} {middle} {family}", f"{given} {middle[0]}. {family}",
                      f"{given[0]}{middle[0]}{family}"]
    return forms


def _digits(word: Word) -> str:
    return re.sub(r"\D", "", word.text)


def _date_at(ws: list[Word], i: int) -> tuple[int, tuple[int, int, int]] | None:
    """A date starting at word i: (words used, (year, month, day))."""
    w = ws[i].folded
    numeric = re.fullmatch(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{2,4})", w)
    if numeric:
        a, _, b, c = numeric.groups()
        if len(a) == 4:
            return 1, (int(a), int(b), int(c))
        year = int(c) + (0 if len(c) == 4 else 1900 if int(c) > 30 else 2000)
        first, second = int(a), int(b)
        return 1, (year, first, second) if first <= 12 else (year, second, first)
    if re.fullmatch(r"(19|20)\d{6}", w):
        return 1, (int(w[:4]), int(w[4:6]), int(w[6:8]))
    parts = re.split(r"-", w)
    if len(parts) == 3 and parts[1] in MONTHS and parts[0].isdigit() and parts[2].isdigit():
        return 1, (_year(parts[2]), MONTHS[parts[1]], int(parts[0]))
    window = [x.folded.rstrip(",") for x in ws[i:i + 4]]
    if len(window) >= 3:
        a, b, c = window[:3]
        if not (len(c) == 4 or c.startswith("'")):
            c = ""  # a two-digit year only with its apostrophe: 'May 24 09:02' is a time
        c = c.lstrip("'")
        if a.rstrip("thsndr").isdigit() and b == "of" and len(window) > 3 and \
                window[2] in MONTHS and window[3].isdigit():
            return 4, (_year(window[3]), MONTHS[window[2]], int(a.rstrip("thsndr")))
        if a.rstrip("thsndr").isdigit() and b in MONTHS and c.isdigit():
            return 3, (_year(c), MONTHS[b], int(a.rstrip("thsndr")))
        if a in MONTHS and b.rstrip("thsndr").isdigit() and c.isdigit():
            return 3, (_year(c), MONTHS[a], int(b.rstrip("thsndr")))
    if len(window) >= 2 and window[0] in MONTHS and window[1].isdigit() and len(window[1]) == 4:
        return 2, (int(window[1]), MONTHS[window[0]], 1)
    return None


def _valid(date: tuple[int, tuple[int, int, int]] | None
           ) -> tuple[int, tuple[int, int, int]] | None:
    return date if date is not None and date_forms(*date[1]) else None


def _year(text: str) -> int:
    value = int(re.sub(r"\D", "", text) or 0)
    return value if value > 99 else value + (1900 if value > 30 else 2000)


@dataclass(frozen=True)
class Found:
    """An identifier in a text: its kind and the texts to search for."""

    kind: str
    texts: tuple[str, ...]


def identifiers(text: str) -> list[Found]:
    """The identifiers in one text."""
    text = unicodedata.normalize("NFC", text)
    ws = words(text)
    found: list[Found] = []
    i = 0
    while i < len(ws):
        hit = _identifier_at(text, ws, i)
        if hit is None:
            i += 1
            continue
        used, item = hit
        found.append(item)
        i += used
    return found


def _span(text: str, ws: list[Word], i: int, n: int) -> str:
    return text[ws[i].start:ws[min(i + n, len(ws)) - 1].end]


def _identifier_at(text: str, ws: list[Word], i: int) -> tuple[int, Found] | None:
    w = ws[i]
    low = w.folded
    if "@" in w.text and "." in w.text.split("@")[-1]:
        return 1, Found("e-mail", (w.text,))
    date = _valid(_date_at(ws, i))
    if date is not None:
        used, (y, m, d) = date
        return used, Found("date", (_span(text, ws, i, used), *date_forms(y, m, d)))
    digits = _digits(w)
    # A phone: runs of digit groups (and a leading + or parenthesis) of 9 to 15 digits.
    run, count = 0, 0
    while i + run < len(ws) and re.fullmatch(r"\+?\d[\d-]*", ws[i + run].text) and \
            count < 15 and (run == 0 or _PHONE_GAP.fullmatch(
                text[ws[i + run - 1].end:ws[i + run].start])):
        count += len(_digits(ws[i + run]))
        run += 1
        if 9 <= count <= 15 and (run > 1 or "-" in w.text):
            next_is_digit = i + run < len(ws) and ws[i + run].text[:1].isdigit()
            if not next_is_digit and (count >= 10 or w.text.startswith(("+", "0"))):
                return run, Found("phone", (_span(text, ws, i, run),))
    nxt = [x.folded for x in ws[i + 1:i + 7]]
    # A street address: a house number, up to five words, a street word.
    if digits and len(digits) <= 6 and digits == w.text.rstrip("abcdefghABCDEFGH,"):
        for k, word in enumerate(nxt[:6]):
            if word in STREET_WORDS and k >= 1:
                return k + 2, Found("address", (_span(text, ws, i, k + 2), w.text))
        if len(nxt) >= 2 and nxt[0] in STREET_FIRST:
            used = 3 + (nxt[1] in STREET_LINKS and len(nxt) >= 3)
            return used, Found("address", (_span(text, ws, i, used), w.text))
    if low.endswith(STREET_ENDINGS) and len(low) > 4 and i + 1 < len(ws) and \
            _digits(ws[i + 1]) and ws[i + 1].text[:1].isdigit():
        return 2, Found("address", (_span(text, ws, i, 2),))
    if low in ("box",) and i >= 1 and ws[i - 1].folded in ("po", "p.o") and nxt and \
            nxt[0].isdigit():
        return 2, Found("address", (ws[i + 1].text,))
    # Ages over 89.
    if re.fullmatch(r"(9\d|1[0-4]\d)-(years?|yrs?|yo)(-old)?", low):
        return 1, Found("age", (w.text,))
    if digits == w.text and 90 <= int(digits or 0) <= 149 and nxt and \
            nxt[0].split("-")[0] in AGE_UNITS:
        return 2, Found("age", (_span(text, ws, i, 2), w.text))
    if low in ("age", "aged") and nxt and nxt[0].isdigit() and 90 <= int(nxt[0]) <= 149:
        return 2, Found("age", (_span(text, ws, i, 2),))
    if re.fullmatch(r"0?(9\d|1[0-4]\d)y", low):
        return 1, Found("age", (w.text,))
    # Record numbers: a label, then a token with at least four digits.
    if low.rstrip(":") in NUMBER_LABELS or low.rstrip(":#") in NUMBER_LABELS:
        for k, word in enumerate(nxt[:3]):
            if len(_digits(ws[i + 1 + k])) >= 4:
                return k + 2, Found("record number", (ws[i + 1 + k].text,))
            if word not in ("no", "number", "#", ":", "num"):
                break
    if re.fullmatch(r"\d{3}\.\d{3}\.\d{4}", w.text):
        return 1, Found("phone", (w.text,))
    if re.fullmatch(r"\d{3}-\d{2}-\d{4}", w.text):
        return 1, Found("record number", (w.text,))
    # Names: a title or a label, then capitalised words.
    titled = low in TITLES and (not w.text.isupper() or text[w.end:w.end + 1] == ".")
    labelled = low in NAME_LABELS and text[w.end:w.end + 2].strip() in (":", "=")
    signed = low == "signed" or (low == "by" and i >= 1 and ws[i - 1].folded in SIGNING)
    if titled or labelled or signed:
        names = []
        for word in ws[i + 1:i + 4]:
            if not word.text[:1].isupper() or word.folded in NAME_LABELS:
                break
            names.append(word.text.rstrip(".,"))
        names = [n for n in names if len(n) >= 2]
        if names:
            return 1 + len(names), Found("name", tuple(names))
    return None

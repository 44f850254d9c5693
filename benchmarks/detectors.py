"""Measure the clean detectors (deid/engine/detect.py): recall on identifiers typed into free
text, false positives on real descriptors, and the cost per value.

    python -m benchmarks.detectors            # the table of docs/profiles.md
    python -m benchmarks.detectors --list-fp  # the descriptors a detector changes

Identifiers: generated from fixed seeds (names, addresses, phones, dates, e-mails, record
numbers, ages over 89, in the spellings clinical text uses), each inside a sentence. One is
found when none of its words of two or more characters is left. Descriptors: every distinct
text value (LO, SH, ST, LT, UT, UC) of the attributes `clean-descriptors` cleans or Table
E.1-1 does not list, at any depth, in pydicom's test files and ../shared/corpus, plus a few
typical ones (`CT CHEST W CONTRAST`). One is a false positive when cleaning changes it.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_files

from deid.engine.scrub import Scrubber
from deid.profile import load_profiles
from deid.verify.detect import fold
from deid.verify.detect import identifiers as verify_identifiers

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC"}
TYPICAL = ["CT CHEST W CONTRAST", "AX T2 FLAIR", "LYMPH NODE", "MR BRAIN W/O CONTRAST",
           "CT ABD/PELVIS W/ CONTRAST", "SAG T1 MPRAGE 1MM", "DWI b1000", "Ax DWI 3 scan trace",
           "LOCALIZER", "CHEST PA AND LATERAL", "PET/CT WHOLE BODY", "T2 TSE COR 3MM",
           "Dr-1 Lung", "ST 2.5 mm", "MRA COW 3D TOF", "Sag CUBE T2 FS", "5mm Ax Std",
           "XR KNEE 3 VIEWS LT", "US ABDOMEN COMPLETE", "MAMMO SCREENING BILAT 3D",
           "CTA HEAD AND NECK", "Recon 2: 1.25mm", "SE 3/IM 45", "1/2 NEX", "Series 1001",
           "Head^Brain", "Pelvis^Prostate", "Thorax^1CTA_THORACIC_AORTA_GATED (Adult)",
           "Abdomen^01_LiverPerfusion (Adult)", "MR Dr. Seuss Memorial Protocol v2"]

FIRST = ["John", "Mary", "Jose", "Ana", "Wei", "Fatima", "Olga", "Pierre", "Aiko", "Liam",
         "Chloe", "Ahmed", "Sofia", "Kwame", "Ingrid", "Raj"]
LAST = ["Smith", "Garcia", "Nguyen", "Okafor", "Muller", "O'Brien", "Kowalski", "Tanaka",
        "Rossi", "Johansson", "Patel", "Dubois", "MacDonald", "Schmidt", "Ivanova", "Cohen"]
STREETS = ["Main", "Elm", "Oak Hill", "Washington", "Maple", "Sunset", "Lake Shore", "King"]
SUFFIXES = ["Street", "St.", "Avenue", "Ave", "Road", "Rd", "Blvd", "Lane", "Drive", "Way",
            "Court", "Place"]
MONTHS = ["Jan", "FEB", "March", "Apr", "MAY", "June", "jul", "Aug", "SEP", "October", "Nov",
          "DEC"]


def _names(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(80):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        spelled = rng.choice([f"Dr. {first} {last}", f"Dr {last}", f"Mr. {last}",
                              f"Mrs {first} {last}", f"patient: {last.upper()}, {first.upper()}",
                              f"{last}^{first}", f"Referring: {first} {last}",
                              f"read by {first} {last}", f"Ms. {first[0]}. {last}",
                              f"Name: {first} {last}", f"signed {last}, {first}",
                              f"Prof. {last}"])
        phi = spelled.split(":")[-1].removeprefix("read by").removeprefix("signed")
        for title in ("Dr.", "Dr", "Mr.", "Mrs", "Ms.", "Prof.", "Referring"):
            phi = phi.replace(title + " ", "")
        out.append((rng.choice(["{} reviewed the images", "Findings discussed with {}",
                                "{}", "Comparison per {} today"]).format(spelled), phi.strip()))
    return out


def _addresses(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(60):
        number = str(rng.randint(1, 9999))
        street = f"{number} {rng.choice(['', 'N ', 'W. '])}{rng.choice(STREETS)} " \
                 f"{rng.choice(SUFFIXES)}"
        form = rng.choice(["{s}", "{s}, Springfield, IL 62704", "lives at {s}",
                           "{s} Apt 4B", "PO Box {n}", "Hauptstrasse {n}"])
        phi = form.format(s=street, n=number).removeprefix("lives at ")
        phi = phi.replace(", Springfield", "")  # a city name alone is not detected
        out.append((f"Home: {form.format(s=street, n=number)}", phi))
    return out


def _phones(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(60):
        a, b, c = rng.randint(200, 989), rng.randint(200, 999), rng.randint(0, 9999)
        phone = rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}",
                            f"+1 {a} {b} {c:04d}", f"+44 20 7946 {c:04d}",
                            f"0{a} {b} {c:04d}", f"+49 30 {b}{c:04d}", f"{a} {b} {c:04d}"])
        label = rng.choice(["call", "Tel:", "Fax", "phone", "pager", "at"])
        out.append((f"{label} {phone} for results", phone))
    return out


def _dates(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(80):
        y, m, d = rng.randint(1925, 2024), rng.randint(1, 12), rng.randint(1, 28)
        month = MONTHS[m - 1]
        date = rng.choice([f"{d:02d}-{month.upper()[:3]}-{y}", f"{m}/{d}/{y % 100:02d}",
                           f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}-{m:02d}-{d:02d}",
                           f"{y}{m:02d}{d:02d}", f"{month} {d}, {y}", f"{d} {month} {y}",
                           f"{d}-{month}-{y % 100:02d}", f"{month} {y}", f"{d}th of {month} {y}"])
        out.append((rng.choice(["DOB {}", "prior study {}", "seen on {}", "{} follow-up"])
                    .format(date), date))
    return out


def _others(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(20):
        user = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}".replace("'", "")
        email = f"{user}@{rng.choice(['example.org', 'hosp.example.com', 'mail.example'])}"
        out.append((f"send report to {email}", email))
        number = str(rng.randint(1000000, 99999999))
        record = rng.choice([f"MRN: {number}", f"MR# {number}", f"Acc {number}",
                             f"Accession No. A{number}", f"ID {number}", f"{number}"])
        out.append((f"{record} scanned", record.split()[-1]))
        age = rng.randint(90, 109)
        said = rng.choice([f"{age} yo", f"{age}-year-old", f"age {age}", f"{age:03d}Y",
                           f"{age} years old", f"aged {age}"])
        out.append((f"{said} female", said))
    return out


def identifiers(seed: int = 12) -> dict[str, list[tuple[str, str]]]:
    """Sentences with one identifier each, by kind: (sentence, the identifier)."""
    rng = random.Random(seed)
    return {"names": _names(rng), "addresses": _addresses(rng), "phones": _phones(rng),
            "dates": _dates(rng), "e-mail, record numbers, ages": _others(rng)}


def descriptors() -> list[str]:
    """Distinct descriptor values of the test files and the corpus (see module docstring)."""
    listed_profile = load_profiles(["basic"])
    cleaned = load_profiles(["clean-descriptors"])
    files = get_testdata_files("*") + (sorted(p for p in CORPUS.iterdir() if p.is_file())
                                       if CORPUS.is_dir() else [])
    values = set(TYPICAL)
    for path in files:
        try:
            dataset = dcmread(path, force=True, stop_before_pixels=True)
            elements = list(dataset.iterall())
        except Exception:
            continue
        for element in elements:
            tag = int(element.tag)
            try:
                vr, value = element.VR, element.value
            except Exception:
                continue
            if (tag >> 16) % 2 or vr not in TEXT_VRS:
                continue
            rules = cleaned.rules_for_tag(tag)
            listed = bool(listed_profile.rules_for_tag(tag))
            if listed and not (rules and rules[0].action == "C"):
                continue
            for v in value if isinstance(value, list | tuple) or hasattr(value, "append") \
                    else [value]:
                if isinstance(v, str) and v.strip():
                    values.add(v.strip())
    return sorted(values)


def _found(cleaned: str, identifier: str) -> bool:
    words = [w for w in re.findall(r"[0-9A-Za-z]+", identifier) if len(w) >= 2]
    return not any(re.search(rf"(?<![0-9A-Za-z]){re.escape(w)}(?![0-9A-Za-z])", cleaned,
                             re.IGNORECASE) for w in words)


def _phonenumbers() -> Callable[[str], str] | None:
    """Google's libphonenumber (the phonenumbers package), for the phone comparison."""
    try:
        import phonenumbers
    except ImportError:
        return None

    def clean(text: str) -> str:
        for match in reversed(list(phonenumbers.PhoneNumberMatcher(text, "US"))):
            text = text[:match.start] + text[match.end:]
        return text
    return clean


def measure() -> tuple[list[tuple[str, int, int, float]], list[str], int, float]:
    """Recall rows (kind, found, total, µs per value), false positives, descriptors, µs."""
    scrub = Scrubber([])
    rows = []
    for kind, cases in identifiers().items():
        cleaned = [scrub(text) for text, _ in cases]
        cost = _cost(scrub, [text for text, _ in cases])
        found = sum(_found(text, phi) for text, (_, phi) in zip(cleaned, cases, strict=True))
        rows.append((kind, found, len(cases), cost))
    values = descriptors()
    changed = [v for v in values if scrub(v) != v]
    return rows, changed, len(values), _cost(scrub, values)


def _cost(scrub: Scrubber, texts: list[str], repeat: int = 5) -> float:
    """µs per text, the best of a few runs (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            scrub(text)
        best = min(best, time.perf_counter() - start)
    return best / len(texts) * 1e6


def verify_recall() -> list[tuple[str, int, int]]:
    """(kind, found, total) for verification's detection: an identifier is found when one of
    the texts it would search the output for holds it."""
    rows = []
    for kind, cases in identifiers().items():
        found = 0
        for text, phi in cases:
            searched = [fold(t) for item in verify_identifiers(text) for t in item.texts]
            found += any(fold(phi) in t or t in fold(phi) for t in searched)
        rows.append((kind, found, len(cases)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list-fp", action="store_true")
    args = parser.parse_args(argv)
    rows, changed, total, cost = measure()
    print("| identifiers | found | recall | µs per value |\n|---|---|---|---|")
    for kind, found, n, each in rows:
        print(f"| {kind} | {found}/{n} | {found / n:.1%} | {each:.0f} |")
    print(f"| descriptors changed (false positives) | {len(changed)}/{total} | "
          f"{len(changed) / total:.1%} | {cost:.0f} |")
    library = _phonenumbers()
    if library is not None:
        phones = identifiers()["phones"]
        found = sum(_found(library(text), phi) for text, phi in phones)
        false = sum(library(v) != v for v in descriptors())
        print(f"\nphonenumbers (libphonenumber, region US): phones {found}/{len(phones)}, "
              f"descriptors changed {false}/{total}")
    print("\nverification's own detection (deid/verify/detect.py), on the same texts:")
    for kind, found, n in verify_recall():
        print(f"  {kind}: {found}/{n}")
    print(f"  descriptors with a find: {sum(bool(verify_identifiers(v)) for v in descriptors())}"
          f"/{total}")
    if args.list_fp:
        scrub = Scrubber([])
        for value in changed:
            print(f"{value!r} -> {scrub(value)!r}")


if __name__ == "__main__":
    main()

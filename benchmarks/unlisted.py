"""What a profile's unlisted-attribute policy takes out of real files (PS3.15 E.1.1): every
element that neither Table E.1-1 nor a curator's rule names, that the policy removes, empties,
dummies or cleans, counted by attribute over a set of files. Before the policy, `basic` kept
them all but names and UIDs; this is the list a curator reads to decide what to add back.

    python -m benchmarks.unlisted [--profile basic] [PATH ...]   # default: pydicom's test
                                                               # files and ../shared/corpus

Prints a Markdown table: attribute, VR, what happened, in how many files. Values are never
printed.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from pydicom.data import get_testdata_files

from deid.engine import Decision, Rejected, deidentify_dataset
from deid.engine.files import read_dataset
from deid.keys import SecretKey
from deid.profile import load_profiles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
KEY = SecretKey(b"unlisted-report-key-0123456789abcdef", "report")
OUTCOMES = {"X": "removed", "Z": "emptied", "D": "dummied", "C": "cleaned"}


def policy_decision(decision: Decision) -> str | None:
    """What the unlisted policy did to one element, or None when it kept it as it was (or
    something else decided)."""
    rule = decision.rule
    if rule is None or not (rule.selector.startswith("any unlisted")
                            or rule.selector == "(60xx,xxxx)"):
        return None
    if rule.selector in ("any unlisted PN", "any unlisted UI"):
        return None  # removed and replaced before the policy too
    if decision.action == "C" and decision.after == decision.before:
        return None
    return OUTCOMES.get(decision.action, decision.action)


def report(paths: list[Path], profile_names: list[str]) -> tuple[dict, int]:
    """{(keyword, vr, outcome): set of files} and the number of files read."""
    profile = load_profiles(profile_names)
    found: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    read = 0
    for path in paths:
        try:
            dataset = read_dataset(path.read_bytes())
        except Exception:  # noqa: BLE001 - unreadable files are the pipeline's business
            continue
        trace: list[Decision] = []
        try:
            deidentify_dataset(dataset, profile, KEY, trace=trace)
        except Rejected:
            pass  # what was decided before the rejection still counts
        except Exception:  # noqa: BLE001
            continue
        read += 1
        for decision in trace:
            outcome = policy_decision(decision)
            if outcome is not None:
                keyword = decision.path.rsplit(">", 1)[-1]
                found[(keyword, decision.vr, outcome)].add(path.name)
    return found, read


def default_paths() -> list[Path]:
    paths = [Path(p) for p in get_testdata_files("*")]
    if CORPUS.is_dir():
        paths += sorted(p for p in CORPUS.iterdir() if p.suffix not in (".csv", ".md"))
    return [p for p in paths if p.is_file()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--profile", action="append", default=None)
    args = parser.parse_args(argv)
    paths = args.paths or default_paths()
    found, read = report(paths, args.profile or ["basic"])
    print(f"{read} files read; {len(found)} attributes the policy does not keep as they were\n")
    print("| attribute | VR | what happens | files |")
    print("|---|---|---|---:|")
    for (keyword, vr, outcome), files in sorted(found.items()):
        print(f"| `{keyword}` | {vr} | {outcome} | {len(files)} |")


if __name__ == "__main__":
    main()

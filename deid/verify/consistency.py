"""Set-level consistency: the same original UID or PatientID maps to the same new value in
every instance, and two original UIDs never become one.

The accumulator holds digests of the identifiers, never the identifiers, with the first file
that showed each pair; it merges, so a Beam combine can use it as its accumulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deid.verify.findings import CONSISTENCY, Finding

LABELS = {"uid": "UID", "patient_id": "PatientID (0010,0020)"}


@dataclass
class Consistency:
    """(kind, original digest) -> {new digest: first file}, and for UIDs the reverse."""

    forward: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    backward: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, file: str, mappings: list[tuple[str, str, str]]) -> None:
        for kind, old, new in mappings:
            self.forward.setdefault((kind, old), {}).setdefault(new, file)
            if kind == "uid":
                self.backward.setdefault(new, {}).setdefault(old, file)

    def merge(self, other: Consistency) -> Consistency:
        for key, news in other.forward.items():
            mine = self.forward.setdefault(key, {})
            for new, file in news.items():
                mine[new] = min(mine.get(new, file), file)
        for new, olds in other.backward.items():
            mine = self.backward.setdefault(new, {})
            for old, file in olds.items():
                mine[old] = min(mine.get(old, file), file)
        return self

    def findings(self) -> list[Finding]:
        out = []
        for (kind, _), news in sorted(self.forward.items()):
            if len(news) > 1:
                files = sorted(news.values())
                out.append(Finding(CONSISTENCY, kind, ", ".join(files[:5]),
                                   f"one original {LABELS[kind]} became {len(news)} different "
                                   f"new values across {len(files)} files"))
        for _, olds in sorted(self.backward.items()):
            if len(olds) > 1:
                files = sorted(olds.values())
                out.append(Finding(CONSISTENCY, "uid_collision", ", ".join(files[:5]),
                                   f"{len(olds)} different original UIDs became one new UID"))
        return out

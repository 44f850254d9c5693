"""`deid diff`: what changed between two instances, element by element, at every depth."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from deid.curator.elements import (
    Position,
    Positioned,
    comparable,
    creator_of,
    display,
    element_name,
)

CHANGES = ("removed", "changed", "added", "same")


@dataclass(frozen=True)
class Change(Positioned):
    """One element that differs (or, when asked, one that does not)."""

    change: str  # removed, changed, added or same
    position: Position
    name: str
    vr_before: str | None
    vr_after: str | None
    before: str | None  # shown value; None where absent
    after: str | None

    @property
    def vr(self) -> str:
        if self.vr_before and self.vr_after and self.vr_before != self.vr_after:
            return f"{self.vr_before}->{self.vr_after}"
        return self.vr_after or self.vr_before or ""

    def as_json(self) -> dict:
        tag = self.tag
        return {"change": self.change, "path": self.path,
                "tag": f"({tag >> 16:04X},{tag & 0xFFFF:04X})", "name": self.name,
                "vr": self.vr, "before": self.before, "after": self.after}


def diff_datasets(before: Dataset, after: Dataset, *, show_values: bool = False,
                  include_same: bool = False, include_meta: bool = True) -> list[Change]:
    """Every difference between two data sets: elements removed, changed or added, sequences
    compared item by item. File Meta Information (group 0002) first, when present."""
    changes: list[Change] = []
    if include_meta:
        meta_before = getattr(before, "file_meta", None) or Dataset()
        meta_after = getattr(after, "file_meta", None) or Dataset()
        _compare(meta_before, meta_after, (), changes, show_values, include_same)
    _compare(before, after, (), changes, show_values, include_same)
    return changes


def _compare(a: Dataset, b: Dataset, position: Position, out: list[Change], show: bool,
             same: bool) -> None:
    tags = sorted({int(t) for t in a.keys()} | {int(t) for t in b.keys()})  # noqa: SIM118
    for tag in tags:
        here = (*position, (tag, None))
        old = a.get(tag)  # an int tag: the DataElement
        new = b.get(tag)
        creator = creator_of(a, tag) if old is not None else creator_of(b, tag)
        name = element_name(tag, creator)
        if old is None or new is None:
            kind = "added" if old is None else "removed"
            out.append(Change(kind, here, name, old.VR if old is not None else None,
                              new.VR if new is not None else None, display(old, show),
                              display(new, show)))
            continue
        if old.VR == "SQ" and new.VR == "SQ":
            items_a, items_b = list(old.value or []), list(new.value or [])
            kind = "same" if len(items_a) == len(items_b) else "changed"
            if kind == "changed" or same:
                out.append(Change(kind, here, name, old.VR, new.VR, display(old, show),
                                  display(new, show)))
            for index in range(max(len(items_a), len(items_b))):
                at = (*position, (tag, index))
                if index >= len(items_b) or index >= len(items_a):
                    gone = index >= len(items_b)
                    item = items_a[index] if gone else items_b[index]
                    shown = f"<item with {len(item)} element{'s' if len(item) != 1 else ''}>"
                    out.append(Change("removed" if gone else "added", at, f"{name} item",
                                      "SQ" if gone else None, None if gone else "SQ",
                                      shown if gone else None, None if gone else shown))
                    continue
                _compare(items_a[index], items_b[index], at, out, show, same)
            continue
        kind = "same" if (old.VR == new.VR and comparable(old) == comparable(new)) else "changed"
        if kind == "changed" or same:
            out.append(Change(kind, here, name, old.VR, new.VR, display(old, show),
                              display(new, show)))


def summary(changes: list[Change]) -> dict[str, int]:
    counts = dict.fromkeys(CHANGES, 0)
    for change in changes:
        counts[change.change] += 1
    return counts

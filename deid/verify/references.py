"""Collection-level check: the references between instances survive de-identification.

By its own means, not the engine's rules. A reference is a UID value inside a sequence, at any
depth, equal to a UID that an input of the collection defines: one of its top-level UIDs (SOP
Instance, Series, Study, Frame of Reference, ...) or a Tracking UID (0062,0021) that one of its
items defines (a segment's, which a TID 1500 report names in a UIDREF content item). Each such
reference of an original must, in its output at the same place, hold the value that the
target's output defines at the target's place. Otherwise it is

- ``lost``: the place is gone from the output (the sequence or the element removed or
  emptied), so the output no longer references what its original did;
- ``unresolved``: the output holds another value (a UID replaced as its target's was not, or
  kept while the target's was replaced), or its target has no output (quarantined, rejected).

References inside private elements are not checked: the profile's private policy decides
those, and a vendor's copy of a UID is not a link a viewer follows. Only digests of UIDs are
held (as for consistency), and findings name files and places, never values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset

from deid.engine.files import check_size
from deid.standard import keyword_of, tag_text
from deid.verify.elements import element_at, values_of
from deid.verify.findings import Finding
from deid.verify.pair import digest, is_well_known

REFERENCES = "references"  # the kind of finding
TRACKING_UID = 0x00620021
# A place: the path of (sequence tag, item index) pairs, then the element's tag and the
# index of the value in it.
Place = tuple


def _uids(dataset: Dataset) -> tuple[dict[Place, str], dict[Place, str]]:
    """Every UID value that is not one the Standard registers, as digests, by place: those
    at the top level, and those inside sequences."""
    top: dict[Place, str] = {}
    nested: dict[Place, str] = {}
    pending: list[tuple[Dataset, tuple]] = [(dataset, ())]
    while pending:
        current, path = pending.pop()
        for tag in current.keys():  # noqa: SIM118 - no decoding of other values
            tag = int(tag)
            if (tag >> 16) in (0x0002, 0xFFFE) or (tag >> 16) % 2:
                continue  # file meta, delimiters, private elements
            element = element_at(current, tag)
            if element.VR == "SQ":
                for index, item in enumerate(element.value or []):
                    pending.append((item, (*path, (tag, index))))
            elif element.VR == "UI":
                for index, value in enumerate(values_of(element)):
                    uid = value.strip("\0 ")
                    if uid and not is_well_known(uid):
                        (nested if path else top)[(*path, tag, index)] = digest(uid)
    return top, nested


def _defines(top: dict[Place, str], nested: dict[Place, str]) -> dict[Place, str]:
    """The places where an instance defines a UID others may reference."""
    return {**top, **{place: d for place, d in nested.items() if place[-2] == TRACKING_UID}}


def _where(place: Place) -> str:
    """A place as text: keywords and item indexes, no value."""
    parts = [f"{keyword_of(tag)}[{index}]" for tag, index in place[:-2]]
    tag = place[-2]
    return ">".join([*parts, f"{keyword_of(tag)} {tag_text(tag)}"])


def _read(data: bytes) -> Dataset | None:
    try:
        check_size(data)
        return dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception:
        return None  # an unreadable file is the pair check's finding


@dataclass
class _Instance:
    file: str  # the output, or the original when it has none
    defines: dict[Place, str]  # original definitions, by place
    references: dict[Place, str]  # every nested UID of the original, by place
    output: dict[Place, str] | None  # every UID of the output, by place; None: no output


@dataclass
class References:
    """Accumulates the pairs of a set; ``findings`` checks the references among them."""

    instances: list[_Instance] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # by outcome, after findings()

    def add(self, original: bytes, output: bytes | None, file: str) -> None:
        """One original and its output (None: quarantined, rejected or missing)."""
        source = _read(original)
        if source is None:
            return
        top, nested = _uids(source)
        result = _read(output) if output is not None else None
        if output is not None and result is None:
            return
        outputs = None
        if result is not None:
            out_top, out_nested = _uids(result)
            outputs = {**out_top, **out_nested}
        self.instances.append(_Instance(file, _defines(top, nested), nested, outputs))

    def findings(self) -> list[Finding]:
        # What each defined original UID became where it is defined: the target's new value.
        targets: dict[str, set[str]] = {}
        defined: set[str] = set()
        for instance in self.instances:
            for place, original in instance.defines.items():
                defined.add(original)
                if instance.output is not None and place in instance.output:
                    targets.setdefault(original, set()).add(instance.output[place])
        found = []
        self.counts = {"resolved": 0, "unresolved": 0, "lost": 0}
        for instance in self.instances:
            if instance.output is None:
                continue
            for place, original in instance.references.items():
                if original not in defined or place in instance.defines:
                    continue  # not a reference into the collection, or a definition
                new = instance.output.get(place)
                if new is None:
                    self.counts["lost"] += 1
                    found.append(Finding(REFERENCES, "lost", f"{instance.file}: {_where(place)}",
                                         "the original references an instance of the "
                                         "collection here; the output does not"))
                elif new in targets.get(original, ()):
                    self.counts["resolved"] += 1
                else:
                    self.counts["unresolved"] += 1
                    why = ("its target has no output (quarantined or rejected)"
                           if original not in targets else
                           "it does not hold the UID its target's output has")
                    found.append(Finding(REFERENCES, "unresolved",
                                         f"{instance.file}: {_where(place)}",
                                         f"the reference does not resolve in the output: {why}"))
        return found

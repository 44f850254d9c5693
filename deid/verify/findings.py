"""What verification found, as data: per instance and for the set, as JSON and as a summary.

Findings name a file, a tag path and a check, never a value: a leak finding says which
original attribute's value was found and where, not the value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# The kinds of finding; `check` refines each (e.g. conformance/emptied, leak/text).
CONFORMANCE, LEAK, CONSISTENCY, PAIRING = "conformance", "leak", "consistency", "pairing"

# Instance statuses: only "failed" (and unpaired outputs or missing outputs) are findings.
PASSED, FAILED, QUARANTINED, REJECTED = "passed", "failed", "quarantined", "rejected"


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, the check that found it, where (tag path or file), and a text
    that names attributes and files only."""

    kind: str
    check: str
    where: str
    detail: str

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.check}"

    def as_json(self) -> dict:
        return {"kind": self.kind, "check": self.check, "where": self.where,
                "detail": self.detail}


@dataclass
class InstanceResult:
    """One original and its de-identified file (either may be missing)."""

    original: str | None
    deidentified: str | None
    status: str
    findings: list[Finding] = field(default_factory=list)
    note: str = ""  # e.g. the reason an original without output was quarantined or rejected

    def as_json(self) -> dict:
        out = {"original": self.original, "deidentified": self.deidentified,
               "status": self.status, "findings": [f.as_json() for f in self.findings]}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Report:
    """The verification of a set: every instance and the set-level (consistency) findings."""

    profiles: tuple[str, ...]
    instances: list[InstanceResult] = field(default_factory=list)
    set_findings: list[Finding] = field(default_factory=list)
    # References among the instances (deid verify over folders): resolved, unresolved, lost.
    references: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        return [f for i in self.instances for f in i.findings] + self.set_findings

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        statuses = Counter(i.status for i in self.instances)
        return {"instances": len(self.instances),
                **{s: statuses.get(s, 0) for s in (PASSED, FAILED, QUARANTINED, REJECTED)},
                "findings": len(self.findings)}

    def by_check(self) -> dict[str, int]:
        return dict(sorted(Counter(f.name for f in self.findings).items()))

    def as_json(self) -> dict:
        return {"profiles": list(self.profiles), "ok": self.ok, "counts": self.counts(),
                "by_check": self.by_check(), "references": self.references,
                "instances": [i.as_json() for i in self.instances],
                "set_findings": [f.as_json() for f in self.set_findings]}

    def summary(self, limit: int = 20) -> str:
        """A few lines for a terminal: counts, findings by check, the first findings."""
        counts = self.counts()
        lines = [f"deid verify ({'+'.join(self.profiles)}): {counts['instances']} instance(s): "
                 f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[QUARANTINED]} "
                 f"quarantined, {counts[REJECTED]} rejected; {counts['findings']} finding(s)"]
        if self.references:
            lines.append("  references: " + ", ".join(f"{n} {outcome}" for outcome, n
                                                      in self.references.items()))
        lines += [f"  {name:<34} {n:>6}" for name, n in self.by_check().items()]
        shown = [(i.deidentified or i.original or "", f) for i in self.instances
                 for f in i.findings] + [("(set)", f) for f in self.set_findings]
        for file, finding in shown[:limit]:
            lines.append(f"  {file}: {finding.name} at {finding.where}: {finding.detail}")
        if len(shown) > limit:
            lines.append(f"  ... {len(shown) - limit} more in the JSON report (--json)")
        lines.append("result: " + ("clean" if self.ok else "FINDINGS (exit 1)"))
        return "\n".join(lines)

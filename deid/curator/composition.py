"""How the documents of a composition relate: who extends whom, and how to describe a rule.

Built on ``deid.profile.loader.load_documents``: documents come in application order, each
with its rules in file order. This module only adds the ``extends`` graph between them (which
the loader resolves but does not keep) and plain-text descriptions of rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deid.profile.loader import ProfileDocument
from deid.profile.model import ACTION_NAMES, Rule
from deid.standard import keyword_of


def _is_path(spec: str) -> bool:
    """Whether an 'extends' entry names a file rather than a built-in profile (the loader's
    rule: a .yaml/.yml suffix or a path separator)."""
    return spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec


def _identity(document: ProfileDocument) -> str:
    if document.folder is None:  # a built-in profile, shown as profiles/NAME.yaml
        return document.path
    return str(Path(document.path).resolve())


@dataclass
class Composition:
    """Documents in application order, with the transitive 'extends' relation."""

    documents: list[ProfileDocument]
    ancestors: list[set[int]]  # by document index: every document it extends, transitively
    roots: list[int]  # documents no other document extends: those named on the command line

    @classmethod
    def of(cls, documents: Sequence[ProfileDocument]) -> Composition:
        documents = list(documents)
        index = {_identity(doc): i for i, doc in enumerate(documents)}
        parents: list[set[int]] = []
        for doc in documents:
            found = set()
            for spec, _source in doc.extends:
                if _is_path(spec):
                    path = Path(spec)
                    if not path.is_absolute() and doc.folder is not None:
                        path = doc.folder / path
                    key = str(path.resolve())
                else:
                    key = f"profiles/{spec}.yaml"
                if key in index:
                    found.add(index[key])
            parents.append(found)
        ancestors: list[set[int]] = []
        for i in range(len(documents)):  # the loader puts every parent before its children
            every = set(parents[i])
            for parent in parents[i]:
                every |= ancestors[parent]
            ancestors.append(every)
        extended = set().union(*ancestors) if ancestors else set()
        roots = [i for i in range(len(documents)) if i not in extended]
        return cls(documents, ancestors, roots)

    def extends(self, child: int, parent: int) -> bool:
        """Whether document ``child`` extends document ``parent``, directly or not."""
        return parent in self.ancestors[child]

    def is_builtin(self, i: int) -> bool:
        return self.documents[i].folder is None

    def entry_point(self, i: int) -> int:
        """The first command-line document that brings document ``i`` into the composition."""
        for root in self.roots:
            if root == i or i in self.ancestors[root]:
                return root
        return i


def effect(rule: Rule) -> tuple:
    """What a rule does, apart from where it applies and where it is written."""
    lookup = rule.lookup
    return (rule.action, rule.value, rule.template,
            (lookup.file, lookup.key_tag, lookup.missing) if lookup else None,
            tuple(sorted(rule.allow)) if rule.allow is not None else None, rule.allow_patterns)


def describe_action(rule: Rule) -> str:
    """The action with its parameters, e.g. "replace 'SUBJECT'" or 'clean (allow 2 values)'."""
    action = rule.action
    if action == "replace":
        return (f"replace {rule.value!r}" if rule.template is None
                else f"replace template {rule.template!r}")
    if action == "lookup" and rule.lookup is not None:
        lookup = rule.lookup
        text = f"lookup {Path(lookup.file).name}"
        if lookup.key_tag is not None:
            text += f" by {keyword_of(lookup.key_tag)}"
        return f"{text}, missing {lookup.missing}"
    if action == "C" and (rule.allow is not None or rule.allow_patterns):
        parts = []
        if rule.allow:
            parts.append(f"{len(rule.allow)} value{'s' if len(rule.allow) != 1 else ''}")
        if rule.allow_patterns:
            count = len(rule.allow_patterns)
            parts.append(f"{count} pattern{'s' if count != 1 else ''}")
        return f"C allow {' + '.join(parts) or 'nothing'}"
    return action


def action_meaning(action: str) -> str:
    """'X' -> 'remove'; curator actions and compound codes stay as they are."""
    return ACTION_NAMES.get(action, action)


def describe_conditions(rule: Rule) -> str:
    """'when Modality in MR, CT; within ContentSequence', or '' for an unconditional rule."""
    parts = []
    for tag, values in rule.when:
        shown = ", ".join(sorted(values))
        parts.append(f"when {keyword_of(tag)} {'is' if len(values) == 1 else 'in'} {shown}")
    if rule.within:
        parts.append(f"within {rule.within}")
    return "; ".join(parts)


def conditions_json(rule: Rule) -> dict:
    out: dict = {}
    if rule.when:
        out["when"] = {keyword_of(tag): sorted(values) for tag, values in rule.when}
    if rule.within:
        out["within"] = rule.within
    return out


def source_json(rule: Rule) -> dict:
    return {"file": rule.source.file, "line": rule.source.line, "column": rule.source.column,
            "profile": rule.profile}


def rule_json(rule: Rule) -> dict:
    """A rule as plain data."""
    out = {"selector": rule.selector, "action": rule.action,
           "conditions": conditions_json(rule), "source": source_json(rule)}
    if rule.value is not None:
        out["value"] = rule.value
    if rule.template is not None:
        out["template"] = rule.template
    if rule.lookup is not None:
        out["lookup"] = {"file": rule.lookup.file, "missing": rule.lookup.missing,
                         "key": keyword_of(rule.lookup.key_tag)
                         if rule.lookup.key_tag is not None else None}
    if rule.allow is not None:
        out["allow"] = sorted(rule.allow)
    if rule.allow_patterns:
        out["allow_patterns"] = list(rule.allow_patterns)
    return out

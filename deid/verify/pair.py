"""Checks of one original against its de-identified version: conformance to the profile and
leaks of the original's identifying values.

The walk decides, for every element of the original at every depth, which rule the profile
applies, the way the engine does (deid/engine/core.py), and checks the outcome in the output at
the same place (sequence items keep their order). It accepts everything the engine may do:
any alternative of a compound code, removal where the element's VR does not fit the action.
It needs no key: replaced UIDs, hashes and shifted dates are checked to differ, not recomputed.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.datadict import get_entry
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from deid import standard
from deid.engine import read_dataset
from deid.engine.core import Rejected
from deid.engine.dummy import dummy_value
from deid.engine.uids import is_valid_uid
from deid.profile.model import COMPOUND, Profile, Rule
from deid.standard import keyword_of, tag_text
from deid.verify.detect import fold, name_forms
from deid.verify.elements import element_at, values_of
from deid.verify.findings import CONFORMANCE, Finding
from deid.verify.leaks import DATE_VRS, MIN_TEXT, TEXT_VRS, Token, find_leaks, tokens_of_value

BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
TOKEN_VRS = TEXT_VRS - {"CS"} | {"DA", "DT"}
# What an attribute no rule names may hold and stay (verification's own judgement, PS3.15
# E.1.1): numbers, coded strings and binary data (searched for leaks all the same), never free
# text, a date, a value sent as UN or any value of a public tag the dictionary does not know.
# Attributes whose whole value identifies (IDs, numbers, names, addresses), by keyword.
IDENTIFIER_KEYWORD = re.compile(r"(?<!Model)(ID|IDs|Number|Numbers|Name|Names|Address|"
                                r"Telephone\w*|Identifier|Issuer\w*|UID|UIDs)$")
SAFE_UNRULED_VRS = frozenset({"AT", "CS", "DS", "FD", "FL", "IS", "SL", "SS", "SV", "UL", "US",
                              "UV", "OB", "OD", "OF", "OL", "OV", "OW"})
PATIENT_ID = 0x00100020
# Patient ID, Other Patient IDs, Accession Number, Study ID: identifiers of the instance.
IDENTITY_TAGS = frozenset({PATIENT_ID, 0x00101000, 0x00080050, 0x00200010})
# PS3.15 E.1.1: the attributes the engine inserts into every de-identified instance.
MARKERS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
# PS3.15 E.3.1: under burned_in: clean the engine sets Burned In Annotation NO on images, and
# cleaning a lossy source writes it uncompressed with Lossy Image Compression 01 and its method.
BURNED_IN_ANNOTATION, LOSSY_IMAGE_COMPRESSION = 0x00280301, 0x00282110
PIXEL_MARKERS = frozenset({BURNED_IN_ANNOTATION, LOSSY_IMAGE_COMPRESSION, 0x00282112,
                           0x00282114})


@dataclass
class PairResult:
    """The findings of one pair, and the (original, new) digests the set checks for
    consistency: ("uid", ...) for every UID value, ("patient_id", ...) for PatientID."""

    findings: list[Finding] = field(default_factory=list)
    mappings: list[tuple[str, str, str]] = field(default_factory=list)


def digest(value: str) -> str:
    """What consistency keeps of an identifier: never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def in_dictionary(tag: int) -> bool:
    """A public tag of the data dictionary, repeating groups (60xx) included."""
    try:
        get_entry(tag)
    except KeyError:
        return False
    return True


def _safe_in_dictionary(tag: int) -> bool:
    """A public tag of the data dictionary whose VR there may stay unruled too (text sent as
    OB is still text)."""
    return in_dictionary(tag) and all(
        vr.strip() in SAFE_UNRULED_VRS for vr in get_entry(tag)[0].replace(" or ", "/").split("/"))


CONTEXT_GROUP_UID = re.compile(r"1\.2\.840\.10008\.6\.1\.[1-9][0-9]*")


def is_well_known(uid: str) -> bool:
    """A UID the Standard defines, by its registries, not by the root a UID starts with
    (verification's own test): PS3.6 Annex A as pydicom ships it, the Storage SOP Classes of
    the IOD tables in deid/standard/data (newer than pydicom's copy), and the Context Group
    UIDs of PS3.6 Table A-3 (1.2.840.10008.6.1.n, which pydicom does not list)."""
    return (uid in UID_dictionary or standard.iod_of_sop_class(uid) is not None
            or CONTEXT_GROUP_UID.fullmatch(uid) is not None)


def _stripped(element) -> list[str]:
    return [v.strip("\0 ") for v in values_of(element)]


def _is_empty(element) -> bool:
    if element.VR == "SQ":
        return len(element.value or []) == 0
    return not any(v for v in _stripped(element))


def _creators(dataset: Dataset) -> dict[tuple[int, int], str]:
    return {(t >> 16, t & 0xFF): " ".join(values_of(element_at(dataset, t))).strip()
            for t in dataset.keys()  # noqa: SIM118 - no value decoding
            if (t >> 16) % 2 and 0x10 <= (t & 0xFFFF) <= 0xFF}


def _identity_words(original: Dataset) -> frozenset[str]:
    """The words of the original's top-level names and its patient and study identifiers,
    folded, of at least MIN_TEXT characters."""
    found: set[str] = set()
    for tag in original.keys():  # noqa: SIM118 - decoding only names and IDs
        raw = original.get_item(tag)
        if raw.VR == "PN" or (raw.VR in (None, "UN") and in_dictionary(int(tag))
                              and get_entry(int(tag))[0] == "PN"):
            found.update(w for v in values_of(element_at(original, int(tag)))
                         for form in name_forms(v) for w in re.split(r"[\s^=,.]+", form))
        elif int(tag) in IDENTITY_TAGS:
            found.update(v.strip() for v in values_of(element_at(original, int(tag))))
    return frozenset(fold(w) for w in found if len(w) >= MIN_TEXT)


class _Walk:
    """One pass over an original and its output, side by side: conformance findings, the
    original's identifying values (tokens), the text it keeps, and the UID mappings."""

    def __init__(self, profile: Profile, original: Dataset):
        self.profile = profile
        self.markers = MARKERS | PIXEL_MARKERS if profile.burned_in == "clean" else MARKERS
        self.findings: list[Finding] = []
        self.mappings: list[tuple[str, str, str]] = []
        self.tokens: list[Token] = []
        self.kept: list[str] = []  # original text the profile keeps: never a leak
        self.technical: list[str] = []  # kept technical text: a leak only of names and IDs
        self.read_as: str | None = None  # the current element's bytes as read, if raw
        self.originals = {tag: [v.strip() for v in values_of(element_at(original, tag))]
                          for tag in profile.original_tags if tag in original}
        self.identity_words = _identity_words(original)

    def finding(self, check: str, where: str, detail: str) -> None:
        self.findings.append(Finding(CONFORMANCE, check, where, detail))

    # --- the walk -------------------------------------------------------------------------

    def dataset(self, original: Dataset, output: Dataset, path: tuple[str, ...], where: str,
                mode: str) -> None:
        creators = _creators(original)
        for tag in original.keys():  # noqa: SIM118
            tag = int(tag)
            if not path and tag in self.markers:
                continue  # replaced by the engine's own; checked by _markers
            raw = original.get_item(tag)
            # The bytes as read: a kept element whose VR makes them numbers still holds text.
            self.read_as = raw.value.decode("latin-1") if isinstance(
                raw, RawDataElement) and isinstance(raw.value, bytes) else None
            element = element_at(original, tag)
            at = f"{where}{keyword_of(tag)} {tag_text(tag)}"
            action, rule = self.decide(tag, element.VR, creators, path, mode)
            out = element_at(output, tag) if tag in output else None
            self.element(action, rule, element, out, path, at, mode)
        self.unexpected(original, output, where, top=not path)

    def decide(self, tag: int, vr: str, creators: dict[tuple[int, int], str],
               path: tuple[str, ...], mode: str) -> tuple[str, Rule | None]:
        """The action the engine takes: a code, 'unruled', 'creator' or 'parse'."""
        group, elem = tag >> 16, tag & 0xFFFF
        if group % 2:
            if 0x10 <= elem <= 0xFF:
                return "creator", None
            if mode == "dummy":
                return "X", None  # a dummied sequence's action covers its contents
            creator = creators.get((group, elem >> 8)) if elem >= 0x1000 else None
            if not creator or group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF):
                return "X", None
            rule = self.choose(self.profile.private_rules(creator, group, elem & 0xFF),
                               path)
            if rule is not None:
                return rule.action, rule
            if self.profile.private == "keep":
                return "unruled", None
            # PS3.15 E.3.10: a private sequence not known to be safe is parsed item by item.
            return ("parse", None) if vr == "SQ" and self.profile.by_private else ("X", None)
        if elem == 0 or group in (0x0000, 0x0002, 0x0004):
            return "X", None  # group lengths, command, meta and directory elements (E.1.1)
        rule = self.choose(self.profile.rules_for_tag(tag), path)
        if mode == "dummy":
            # Table E.1-1a: the sequence's D covers its contents; but a UID the profile keeps
            # (E.3.9: Retain UIDs keeps all) is kept there too.
            kept = vr == "UI" and (rule or self.profile.unlisted_rule(tag, vr))
            return ("K", kept) if kept and kept.action == "K" else ("unruled", None)
        if rule is None and mode == "clean" and vr in TEXT_VRS - {"PN"}:
            return "unruled", None  # cleaned, as its sequence is
        rule = rule or self.profile.unlisted_rule(tag, vr)
        return (rule.action, rule) if rule is not None else ("unruled", None)

    def choose(self, rules: tuple[Rule, ...], path: tuple[str, ...]) -> Rule | None:
        return next((r for r in rules if not r.conditional or r.applies(path, self.originals)),
                    None)

    def element(self, action: str, rule: Rule | None, original, output,
                path: tuple[str, ...], at: str, mode: str) -> None:
        vr = original.VR
        if action == "creator":
            return
        if action == "unruled":
            self.unruled(original, output, path, at, mode)
            return
        if action != "K":  # all text no rule keeps; of cleaned text, what is identifying
            self.collect_tokens(original, at, cleaned=action == "C")
            if vr == "SQ" and not self.walks(action, output):
                self.harvest(original, at)  # what a removed or emptied sequence held
        if action == "parse":
            self.sequence(original, output, path, at, mode)
            return
        if action == "K" and self.unsafe_private(rule, original):
            self.collect_tokens(original, at)  # not the element kept as safe: may go
            return
        if action == "K":
            self.keep(original)
            if vr == "SQ":
                self.sequence(original, output, path, at, "apply")
            elif output is None:
                self.finding("kept", at, "the profile keeps it (K) but it is absent")
            return
        self.record_uids(original, output)
        if output is None:
            if action in ("Z", "D"):
                name = "emptied" if action == "Z" else "dummied"
                self.finding(name, at, f"the profile requires it ({action}) but it is absent")
            return
        if action in COMPOUND:
            self.compound(action, original, output, path, at)
        elif action == "X":
            self.finding("removed", at, "the profile removes it (X) but it is present")
        elif action == "Z":
            if not _is_empty(output):
                self.finding("emptied", at, "the profile empties it (Z) but it has a value")
        elif action == "D":
            self.dummy(original, output, path, at)
        elif action == "U":
            if vr == "SQ":
                self.sequence(original, output, path, at, "apply")
            else:
                self.uids(original, output, at)
        elif action == "C":
            self.clean(rule, original, output, path, at)
        else:
            self.curator(action, rule, original, output, path, at)

    @staticmethod
    def walks(action: str, output) -> bool:
        """Whether the engine walks into a sequence under this action (PS3.15 Table E.1-1a: a
        sequence's action covers all its contents; only keeping, dummying, cleaning or
        replacing the UIDs of its items goes in). When it does not, everything the sequence
        held is identifying."""
        if action in COMPOUND:
            present = output is not None and not _is_empty(output)
            return present and bool({"D", "U"} & set(COMPOUND[action]))
        return action in ("K", "U", "D", "C", "parse")

    def compound(self, code: str, original, output, path: tuple[str, ...], at: str) -> None:
        """Z/D, X/Z, X/D, X/Z/D, X/Z/U*: present means one of the other alternatives."""
        alternatives = COMPOUND[code]
        if "Z" in alternatives and _is_empty(output):
            return
        if "D" in alternatives:
            self.dummy(original, output, path, at)
        elif "U" in alternatives:
            if original.VR == "SQ":
                self.sequence(original, output, path, at, "apply")
            else:
                self.uids(original, output, at)
        else:
            self.finding("compound", at, f"the profile's {code} allows no value, but it has one")

    def dummy(self, original, output, path: tuple[str, ...], at: str) -> None:
        if original.VR == "SQ":
            self.sequence(original, output, path, at, "dummy")
        elif original.VR == "UI":
            self.uids(original, output, at)
        elif _is_empty(output):
            self.finding("dummied", at, "the profile gives it a dummy value (D) but it is empty")
        elif (values_of(output) == values_of(original)
              and values_of(output) != [str(dummy_value(original.VR, int(original.tag)))]):
            self.finding("dummied", at, "the profile gives it a dummy value (D) but it still "
                                        "has the original value")

    def uids(self, original, output, at: str) -> None:
        """U: every UID that is not one the Standard defines is changed and valid."""
        before, after = _stripped(original), _stripped(output)
        for old, new in zip(before, after, strict=False):
            if old and not is_well_known(old) and new == old:
                self.finding("uid_replaced", at, "the profile replaces the UID (U) but it is "
                                                 "unchanged")
            replaced = new and new != old  # a UID the Standard defines is kept as it is
            if replaced and output.VR == "UI" and not is_valid_uid(new):
                self.finding("uid_valid", at, "the replaced UID is not a valid UID")
        if len(after) != len(before):
            self.finding("uid_replaced", at, "the number of UID values changed")

    def clean(self, rule: Rule | None, original, output, path: tuple[str, ...], at: str) -> None:
        """C, as the engine cleans (by what the value is)."""
        vr = original.VR
        if rule is not None and (rule.allow is not None or rule.allow_patterns):
            allowed = rule.allow or frozenset()
            if not all(v in allowed or any(re.search(p, v) for p in rule.allow_patterns)
                       for v in values_of(output)):
                self.finding("allow_list", at, "a value outside the rule's allow list is kept")
            elif values_of(output) == values_of(original):
                self.keep(original)
        elif vr == "SQ":
            self.sequence(original, output, path, at, "clean")
        elif vr == "CS" or (vr in TEXT_VRS and (int(original.tag) >> 16) % 2):
            # Coded values, and private text a profile keeps cleaned (tcia): what the cleaning
            # left may stay, but not as text that makes the original's identifiers legitimate
            # (a name in Image Type's fourth value is a leak); the leak search counts only
            # identifiers in them.
            return
        elif vr in ("DA", "DT"):
            self.differs("shifted", original, output, at, "a cleaned date is not shifted")
        elif vr == "UI":
            self.uids(original, output, at)
        elif vr in BINARY_VRS:
            self.finding("cleaned", at, "cleaned binary data must be removed but is present")

    def curator(self, action: str, rule: Rule | None, original, output,
                path: tuple[str, ...], at: str) -> None:
        """shift, hash, replace, lookup: the new value differs, or is the one the rule gives."""
        vr = original.VR
        assert rule is not None
        if action == "shift":
            if vr in ("DA", "DT"):
                self.differs("shifted", original, output, at, "the date is not shifted")
        elif action == "hash":
            if vr == "UI":
                self.uids(original, output, at)
            else:
                self.differs("hashed", original, output, at, "the hashed value is unchanged")
        elif action == "replace":
            if rule.template is None:
                if "\\".join(_stripped(output)) != (rule.value or "").strip("\0 "):
                    self.finding("replaced", at, "the value is not the rule's replacement")
            else:
                self.differs("replaced", original, output, at,
                             "the templated value equals the original")
        elif action == "lookup":
            lookup = rule.lookup
            assert lookup is not None
            new = "\\".join(_stripped(output))
            if new in {v.strip() for v in lookup.table.values()}:
                return
            if lookup.missing == "reject":
                self.finding("lookup", at, "the value is not a replacement from the lookup file")
            else:
                fallback = Rule(lookup.missing, rule.selector, rule.source, rule.profile)
                self.element(lookup.missing, fallback, original, output, path, at, "apply")

    def differs(self, check: str, original, output, at: str, detail: str) -> None:
        before, after = _stripped(original), _stripped(output)
        if any(old and old == new for old, new in zip(before, after, strict=False)):
            self.finding(check, at, detail)

    def unruled(self, original, output, path: tuple[str, ...], at: str, mode: str) -> None:
        """No rule names it. Inside a dummied (D) or cleaned (C) sequence, text is dummied or
        cleaned; a private element is kept where the profile keeps private elements; numbers,
        codes and binary data may stay (SAFE_UNRULED_VRS), though not as text that may be
        searched for; any other element is allowed by no rule and no policy entry: present,
        it is a finding (PS3.15 E.1.1: what the table does not list may identify too), and its
        text a leak."""
        vr = original.VR
        if vr == "SQ":
            if output is None or _is_empty(output):
                self.harvest(original, at)
            self.sequence(original, output, path, at, mode)
        elif mode == "dummy" and (vr in TEXT_VRS - {"CS"} or vr in DATE_VRS):
            self.collect_tokens(original, at)
            if output is None or values_of(output) != [str(dummy_value(vr, int(original.tag)))]:
                self.finding("dummied", at, "inside a dummied sequence, text must be dummied")
        elif mode == "dummy" and vr == "UI":
            self.record_uids(original, output)
            if output is not None:
                self.uids(original, output, at)  # a dummy UID is a replaced one
        elif mode == "clean" and vr in TEXT_VRS:
            self.collect_tokens(original, at, cleaned=True)
        elif (int(original.tag) >> 16) % 2 and self.profile.private == "keep":
            self.keep(original)
        elif vr in SAFE_UNRULED_VRS and _safe_in_dictionary(int(original.tag)):
            if vr != "CS":  # a code is allowed, not kept: a name found in it is a leak
                self.keep(original)
        else:
            self.collect_tokens(original, at)
            if output is not None:
                self.finding("unallowed", at, "no rule and no policy entry of the profile "
                                              "allows this attribute, but it is present")

    def sequence(self, original, output, path: tuple[str, ...], at: str, mode: str) -> None:
        if output is None:
            return
        items, out_items = original.value or [], output.value or []
        if output.VR != "SQ" or len(items) != len(out_items):
            self.finding("structure", at, "the sequence's items do not match the original's")
            return
        inner = (*path, keyword_of(int(original.tag)))
        for index, (item, out_item) in enumerate(zip(items, out_items, strict=True)):
            self.dataset(item, out_item, inner, f"{at}[{index}]>", mode)

    def unexpected(self, original: Dataset, output: Dataset, where: str, top: bool) -> None:
        """The output holds nothing the original did not, but the markers (PS3.15 E.1.1)."""
        for tag in output.keys():  # noqa: SIM118
            tag = int(tag)
            if tag in original or (top and tag in self.markers):
                continue
            private = (tag >> 16) % 2
            self.finding("private" if private else "added", f"{where}{keyword_of(tag)} "
                         f"{tag_text(tag)}", "an element the original does not have")

    # --- what the leak search needs ---------------------------------------------------------

    def unsafe_private(self, rule: Rule | None, original) -> bool:
        """Whether a private element a rule keeps may be absent all the same: its VR is not
        the one the rule names (PS3.15 E.3.10: then it is not the element known to be safe),
        or its value holds a word of the instance's names or IDs."""
        if rule is None or not (int(original.tag) >> 16) % 2:
            return False
        if rule.vr is not None and original.VR not in (*rule.vr.split("/"), "UN"):
            return True
        text = fold(" ".join([*values_of(original), self.read_as or ""]))
        return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)
                   for word in self.identity_words)

    def keep(self, original) -> None:
        tag = int(original.tag)
        if original.VR in TEXT_VRS - {"PN"} and tag not in IDENTITY_TAGS and not (tag >> 16) % 2:
            # Text a rule keeps (technical text, a device's or an institution's identity, the
            # patient's characteristics): never a place for the original's names and IDs.
            self.technical.extend(values_of(original))
            return
        if original.VR not in BINARY_VRS and original.VR != "SQ":
            self.kept.extend(values_of(original))
            if self.read_as is not None and original.VR not in TEXT_VRS:
                self.kept.append(self.read_as)

    def collect_tokens(self, original, at: str, cleaned: bool = False) -> None:
        vr = original.VR
        tag = int(original.tag)
        # A technical attribute the unlisted policy keeps (PulseSequenceName) is no identifier.
        identifier = (bool(IDENTIFIER_KEYWORD.search(keyword_of(tag))) and not (tag >> 16) % 2
                      and tag not in standard.reviewed_kept_tags())
        if vr not in TOKEN_VRS and vr != "UI":
            if self.read_as is not None and vr == "UN" and not cleaned:  # text sent as UN
                self.tokens.extend(tokens_of_value("UT", self.read_as, at, False, identifier))
            return
        for value in values_of(original):
            if vr == "UI" and is_well_known(value.strip("\0 ")):
                continue
            self.tokens.extend(tokens_of_value(vr, value, at, cleaned, identifier))

    def harvest(self, sequence, at: str) -> None:
        """Every value inside a sequence whose items are gone, at any depth (private
        creators aside: they name a vendor, and a kept block keeps them)."""
        for index, item in enumerate(sequence.value or []):
            for tag in item.keys():  # noqa: SIM118
                tag = int(tag)
                if (tag >> 16) % 2 and 0x10 <= (tag & 0xFFFF) <= 0xFF:
                    continue
                element = element_at(item, tag)
                where = f"{at}[{index}]>{keyword_of(tag)} {tag_text(tag)}"
                if element.VR == "SQ":
                    self.harvest(element, where)
                else:
                    self.read_as = None
                    self.collect_tokens(element, where)

    def record_uids(self, original, output) -> None:
        """Consistency: each original UID and PatientID with the value it became."""
        if original.VR == "UI" and output is not None:
            for old, new in zip(_stripped(original), _stripped(output), strict=False):
                if old and not is_well_known(old):
                    self.mappings.append(("uid", digest(old), digest(new)))


def _markers(output: Dataset, findings: list[Finding], burned_in: str, basic: bool) -> None:
    """PS3.15 E.1.1: Patient Identity Removed YES (when the Basic Profile was applied) and a
    De-identification Method; E.3.1:
    under burned_in: clean, Burned In Annotation NO on an image, Lossy Image Compression
    00 or 01."""
    if burned_in == "clean":
        if "PixelData" in output and str(output.get("BurnedInAnnotation", "")).strip() != "NO":
            findings.append(Finding(CONFORMANCE, "markers", "BurnedInAnnotation (0028,0301)",
                                    "must be NO (Clean Pixel Data Option)"))
        lossy = str(output.get("LossyImageCompression", "00")).strip()
        if lossy not in ("00", "01"):
            findings.append(Finding(CONFORMANCE, "markers", "LossyImageCompression (0028,2110)",
                                    "must be 00 or 01"))
    if basic and str(output.get("PatientIdentityRemoved", "") or "").strip() != "YES":
        findings.append(Finding(CONFORMANCE, "markers", "PatientIdentityRemoved (0012,0062)",
                                "must be YES"))
    if not output.get("DeidentificationMethod"):
        findings.append(Finding(CONFORMANCE, "markers", "DeidentificationMethod (0012,0063)",
                                "is missing"))


def _parse(data: bytes, which: str) -> Dataset:
    try:
        return read_dataset(data) if which == "original" else dcmread(io.BytesIO(data))
    except Rejected as exc:
        raise Unverifiable(f"the {which} cannot be read ({exc.reason})") from None
    except Exception as exc:  # pydicom's messages may quote values
        raise Unverifiable(f"the {which} cannot be read ({type(exc).__name__})") from None


class Unverifiable(Exception):
    """A pair that cannot be verified (unreadable files): the message names no value."""


def verify_pair(original: bytes, output: bytes, profile: Profile) -> PairResult:
    """Check one de-identified file against its original. Raises Unverifiable."""
    source, result = _parse(original, "original"), _parse(output, "output")
    try:
        return _check(source, result, output, profile)
    except Exception as exc:  # e.g. a value pydicom cannot decode: fail closed, no value shown
        raise Unverifiable(f"cannot compare the pair ({type(exc).__name__})") from None


def _check(source: Dataset, result: Dataset, output: bytes, profile: Profile) -> PairResult:
    walk = _Walk(profile, source)
    walk.dataset(source, result, (), "", "apply")
    findings = walk.findings
    _markers(result, findings, profile.burned_in, profile.basic)
    old_id = " ".join(_stripped(source.get(PATIENT_ID))) if PATIENT_ID in source else ""
    new_id = " ".join(_stripped(result.get(PATIENT_ID))) if PATIENT_ID in result else ""
    mappings = walk.mappings
    if old_id:
        mappings.append(("patient_id", digest(old_id), digest(new_id)))
    findings += find_leaks(walk.tokens, walk.kept, result, output, profile,
                           (walk.technical, walk.identity_words))
    return PairResult(findings, mappings)

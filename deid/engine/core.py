"""Apply a resolved profile to one dataset, element by element, at every depth.

The engine is a plain function of (dataset, profile, key): no global state, so any number of
workers agree without talking to each other. It decodes pixel data only to clean it (PS3.15
E.3.1, see burned_in.py): elements it keeps are left as read, so their bytes come out identical.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import VR

from deid import standard
from deid.engine import dates
from deid.engine.burned_in import BURNED_IN_ANNOTATION, PixelPlan, clean_pixels, plan_pixels
from deid.engine.dummied import DUMMIED_VRS, Dummier
from deid.engine.dummy import dummy_value, empty_value
from deid.engine.raw import (
    cores,
    dictionary_vr,
    has_value,
    may_hold,
    pydicom_vr,
    raw_uids,
    texts_of,
    uids_of,
    values_of,
)
from deid.engine.rejected import Rejected
from deid.engine.scrub import MIN_TOKEN, Scrubber, squeezed, tokens_of
from deid.engine.uids import is_valid_uid, replace_uid
from deid.engine.writer import UNDEFINED_LENGTH, encoded_elements, encoded_text
from deid.keys import SecretKey
from deid.profile.model import COMPOUND, MethodCode, Profile, Rule, seal_value
from deid.standard import keyword_of, tag_text

TEXT_VRS = frozenset({"AE", "CS", "LO", "SH", "PN", "ST", "LT", "UT", "UC", "UR"})
CODE_WORD = re.compile(r"[ _]+")  # what separates the words of a CS value
CLEANED_VRS = TEXT_VRS - {"PN"}  # a name is never cleaned in place: the unlisted policy decides
# The VRs whose removed values are searched for in cleaned text; of long text (ST, LT, UT)
# only whole values (a description copied into another), not its every word.
TOKEN_VRS = frozenset({"PN", "LO", "SH", "AE", "UC", "DA", "DT", "ST", "LT", "UT"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
SOP_CLASS = 0x00080016
REQUIRED = {SOP_CLASS: "SOPClassUID", 0x00080018: "SOPInstanceUID",
            0x0020000D: "StudyInstanceUID", 0x0020000E: "SeriesInstanceUID"}
PATIENT_ID, STUDY_UID = 0x00100020, 0x0020000D
# Identifiers a coded value (CS) may carry, with the persons' names (Image Type's fourth value).
ID_TAGS = frozenset({PATIENT_ID, 0x00101000, 0x00080050, 0x00200010})  # +OtherPatientIDs,
# AccessionNumber, StudyID
SPECIES = (0x00102201, 0x00102202)  # Patient Species Description, Code Sequence
PIXEL_DATA_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)  # Float, Double Float, Pixel Data
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
MAX_CHARS = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240}  # PS3.5 Table 6.2-1
# A UID typed into free text: a root of 1 or 2 and at least four more components (versions
# such as 5.10.3 and dates such as 12.03.1961 have fewer).
UID_IN_TEXT = re.compile(r"(?<![\d.])[12](?:\.(?:0|[1-9]\d*)){4,}(?!\.?\d)")
VALID_VRS = frozenset(vr.value for vr in VR)
MIN_WORD = 3  # shortest name or ID word looked for in a kept private element's text
MIN_BYTES = 4  # shortest name or ID word looked for in binary data


_WORD_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyz")


class _ByteWords:
    """Any of the words (bytes) as a whole word, ASCII case-insensitively, in binary data.
    bytes.find over the ASCII-lowered data: a regular expression of alternatives with
    look-arounds took 26 ms over one ECG's waveform data, this well under one. Each word is
    looked for only where a word it contains (its core) occurs: a name's variants ('DUBOIS',
    'PDUBOIS', 'DUBOIS,CHLOE') cost one scan of data that holds none of them."""

    def __init__(self, words: Iterable[bytes]):
        folded = sorted({w.lower() for w in words}, key=len, reverse=True)
        self._groups = [(core, [word for word in folded if core in word])
                        for core in cores(folded)]

    def search(self, data: bytes) -> bool:
        if not self._groups:
            return False
        folded = data.lower()
        return any(core in folded and any(self._whole(folded, word) for word in words)
                   for core, words in self._groups)

    @staticmethod
    def _whole(folded: bytes, word: bytes) -> bool:
        start = folded.find(word)
        while start >= 0:
            end = start + len(word)
            if (start == 0 or folded[start - 1] not in _WORD_BYTES) and (
                    end == len(folded) or folded[end] not in _WORD_BYTES):
                return True
            start = folded.find(word, start + 1)
        return False


def _word_pattern(words: Iterable[str]) -> re.Pattern:
    """Any of the words as a whole word, case-insensitively."""
    ordered = sorted(words, key=len, reverse=True)
    alternatives = "|".join(map(re.escape, ordered)) or "(?!)"
    return re.compile(f"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Decision:
    """What the engine did to one element, for `deid explain` and tests."""

    path: str  # e.g. 'ReferencedImageSequence[0]>ReferencedSOPInstanceUID'
    tag: int
    vr: str
    action: str  # the action applied, compound codes already resolved
    rule: Rule | None  # None: no rule named the element
    before: str | None  # the value as read, shown briefly; None: absent
    after: str | None  # the value written; None: removed


@dataclass
class Deidentified:
    """A de-identified dataset and the mappings that re-identify it (linkage output only)."""

    dataset: Dataset
    uid_map: dict[str, str] = field(default_factory=dict)
    patient_ids: tuple[str, str] | None = None
    transfer_syntax: str | None = None  # to write with, when cleaning pixels re-encoded them


def _vr_of(dataset: Dataset, tag: int, element: DataElement | RawDataElement) -> str:
    """The VR the element has once read: pydicom gives a UN element the dictionary's VR when
    it decodes it (a sequence sent as UN becomes SQ), so that VR decides, not the raw one."""
    if element.VR == "UN" and isinstance(element, RawDataElement):
        element = dataset[tag]
    return element.VR or dictionary_vr(tag)


def _shown(dataset: Dataset, tag: int) -> str | None:
    """A short display of an element's value, for traces."""
    if tag not in dataset:
        return None
    element = dataset[tag]
    if element.VR == "SQ":
        return f"<{len(element.value)} item(s)>"
    if isinstance(element.value, bytes):
        return f"<{len(element.value)} bytes>"
    return "\\".join(values_of(element.value))


BINARY_SIZES = {"AT": 4, "FL": 4, "FD": 8, "SL": 4, "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}
# What the bytes of a value of these VRs may hold (PS3.5 Table 6.2-1), multiple values included.
VR_BYTES = {"DS": re.compile(rb"[0-9+\-.eE \\]*"), "IS": re.compile(rb"[0-9+\- \\]*"),
            "CS": re.compile(rb"[A-Z0-9 _\\]*"), "DA": re.compile(rb"[0-9 \\]*"),
            "TM": re.compile(rb"[0-9.: \\]*"), "AS": re.compile(rb"[0-9DWMY \\]*")}


def _agrees(element: DataElement | RawDataElement, expected: str) -> bool:
    """Whether an element, as read, has one of the expected VRs ('OB/OW'). One read without
    its VR (implicit VR, or sent as UN, which pydicom may decode by its private dictionary)
    agrees when its bytes can be a value of that VR; a sequence must have been read as one."""
    allowed = expected.split("/")
    if element.VR in allowed:
        return True
    value = element.value
    if element.VR not in (None, "UN") or not isinstance(value, bytes) or "SQ" in allowed:
        return False
    for kind in allowed:
        size = BINARY_SIZES.get(kind)
        if size is not None:
            if len(value) % size == 0:
                return True
        elif kind in VR_BYTES:
            if VR_BYTES[kind].fullmatch(value.rstrip(b"\0")):
                return True
        else:
            return True  # text and binary VRs: any bytes
    return False


def _store(values: list[str]) -> object:
    return values[0] if len(values) == 1 else values


def _overwrite(dataset: Dataset, tag: int, vr: str, value: object) -> None:
    """Give an element a value that does not depend on its old one. A text or date element is
    replaced unread: pydicom would decode its raw value (character set included) on access,
    only for the value to be discarded."""
    if vr in TEXT_VRS or vr in DATE_VRS:
        dataset[tag] = encoded_text(dataset, tag, vr, value) or DataElement(tag, vr, value)
    else:
        dataset[tag].value = value  # keeps what the read decided, e.g. an undefined length


class _Run:
    """The state of one instance's de-identification; discarded afterwards."""

    def __init__(self, dataset: Dataset, profile: Profile, key: SecretKey,
                 trace: list[Decision] | None, originals: dict[int, list[str]]):
        self.top = dataset
        self.profile = profile
        self.key = key
        self.trace = trace
        self.uid_map: dict[str, str] = {}
        self.templates: list[tuple[Dataset, int, Rule, str]] = []
        self.iod = standard.iod_of_sop_class(sop_class_of(dataset))
        self.originals = originals
        self.animal = any(tag in dataset for tag in SPECIES)  # before anything changes
        self._offset: int | None = None
        self._decided: tuple[str, Rule | None] = ("K", None)
        self._invalid_vrs: list[tuple[Dataset, int]] = []
        # Lookups whose table lacks the value: (file, tag, rule) -> keyed digests of the values.
        self.missing: dict[tuple[str, int, str], set[str]] = {}
        self.dates: set[str] = set()  # what happened to dates: 'shifted', 'kept', 'removed'
        tokens: list[str] = []
        named: list[str] = []
        if profile.cleans_codes:
            tokens, named = self._tokens(dataset, deep=profile.cleans)
        self.scrub = Scrubber(tokens if profile.cleans else [])
        # CS: the words of names and IDs only, not the words of removed text.
        self.code_words = frozenset(word for value in named
                                    for word in CODE_WORD.split(value.upper())
                                    if len(word) >= MIN_TOKEN)

    # --- set-up ---------------------------------------------------------------------------

    def _choose(self, rules: tuple[Rule, ...], path: tuple[str, ...]) -> Rule | None:
        """The first candidate rule whose conditions hold here."""
        for rule in rules:
            if not rule.conditional or rule.applies(path, self.originals):
                return rule
        return None

    def _tokens(self, dataset: Dataset, deep: bool) -> tuple[list[str], list[str]]:
        """Identifying values of the instance: those of every text or date element the
        profile does not keep, at any depth; and, for coded values, only persons' names and
        the patient's and study's identifiers (a CS value also holds words of removed
        descriptions: 'CHEST' must stay in Body Part Examined). Not ``deep``: only the
        latter, at the top level, which is cheap enough for every instance."""
        found: list[str] = []
        named: list[str] = []
        pending = [dataset]
        while pending:
            current = pending.pop()
            # Only the elements that matter are decoded: a sequence's items and text; an
            # element whose VR is invalid is left for check_vrs.
            for tag, raw in current.items():
                tag = int(tag)
                vr = raw.VR if raw.VR not in (None, "UN") else dictionary_vr(tag)
                if (tag >> 16) % 2 or (vr not in TOKEN_VRS and vr != "SQ") or (
                        not deep and vr != "PN" and tag not in ID_TAGS):
                    continue
                read = texts_of(current, tag) if vr != "SQ" else None
                if read is None:
                    element = current[tag]
                    if element.VR == "SQ":
                        pending.extend(element.value)
                        continue
                    read = element.VR, values_of(element.value)
                vr, values = read
                rules = self.profile.rules_for_tag(tag)
                rule = rules[0] if rules else self.profile.unlisted_rule(tag, vr)
                if vr not in TOKEN_VRS or rule is None or rule.action in ("K", "C"):
                    continue
                for value in values:
                    tokens = tokens_of(vr, value)
                    found.extend(tokens)
                    if vr == "PN":
                        named.extend(tokens)
                    elif tag in ID_TAGS and len(value.strip()) >= 2:
                        named.append(value.strip())
        return found, named

    def offset(self) -> int:
        """This patient's date offset, from PatientID, else StudyInstanceUID."""
        if self._offset is None:
            patient = (self.originals.get(PATIENT_ID) or [""])[0].strip()
            if not patient:
                patient = "study:" + (self.originals.get(STUDY_UID) or [""])[0].strip()
            if patient == "study:":
                raise Rejected("missing_attribute", "no PatientID (0010,0020) or "
                               "StudyInstanceUID (0020,000D) to derive the date offset from")
            self._offset = dates.patient_offset(self.key, patient, self.profile.date_shift)
        return self._offset

    # --- traversal ------------------------------------------------------------------------

    def process(self, dataset: Dataset, path: tuple[str, ...], mode: str) -> None:
        """Apply the profile to every element of one dataset (the top level or an item)."""
        creators: dict[tuple[int, int], str] = {}
        # Dataset.items() gives the elements as held, without decoding values (iterating a
        # Dataset decodes all); a list, since the loop changes the data set.
        elements = list(dataset.items())
        for tag, _ in elements:
            if (tag >> 16) % 2 and 0x10 <= (tag & 0xFFFF) <= 0xFF:
                creators[(tag >> 16, tag & 0xFF)] = str(dataset[tag].value or "").strip()
        for tag, element in elements:
            tag = int(tag)
            if element.value is None and isinstance(element, RawDataElement):
                element = dataset.get_item(tag)  # an empty value: pydicom converts it there
            if self.trace is None:
                self._element(dataset, tag, element, creators, path, mode)
                continue
            # Recorded in document order: the element first, then what recursion adds.
            index, before = len(self.trace), _shown(dataset, tag)
            element = dataset.get_item(tag)  # as _shown left it
            vr = self._vr(dataset, tag, element)
            self.trace.append(None)  # type: ignore[arg-type]
            self._decided = ("K", None)
            self._element(dataset, tag, element, creators, path, mode)
            action, rule = self._decided
            self.trace[index] = Decision(">".join((*path, keyword_of(tag))), tag, vr, action,
                                         rule, before, _shown(dataset, tag))
        self._drop_unused_creators(dataset, creators)

    def _vr(self, dataset: Dataset, tag: int, element: DataElement | RawDataElement) -> str:
        """The element's VR, noting one that is not a DICOM VR for check_vrs."""
        vr = _vr_of(dataset, tag, element)
        if vr not in VALID_VRS:
            self._invalid_vrs.append((dataset, tag))
        return vr

    def check_vrs(self) -> None:
        """An element whose VR is not a DICOM VR may be removed, never written back: it would
        make readers take the file for implicit VR and misparse everything after it (PS3.5
        7.1.2: the VR is one of Table 6.2-1's)."""
        for dataset, tag in self._invalid_vrs:
            if tag in dataset:
                raise Rejected("unreadable", f"{keyword_of(tag)} {tag_text(tag)} has no valid "
                               "VR and the profile keeps it")

    def _element(self, dataset: Dataset, tag: int, element: DataElement | RawDataElement,
                 creators: dict[tuple[int, int], str], path: tuple[str, ...],
                 mode: str) -> None:
        group, elem = tag >> 16, tag & 0xFFFF
        if group % 2:
            if 0x10 <= elem <= 0xFF:
                self._record("K", None)  # a private creator: kept while its block is used
            else:
                self._private(dataset, tag, element, creators, path, mode)
        elif elem == 0 or group in (0x0000, 0x0002, 0x0004):
            # Group lengths are retired; command, file meta and directory elements do not
            # belong in a data set (PS3.15 E.1.1: group 0004 shall be removed).
            self._record("X", None)
            del dataset[tag]
        else:
            self._public(dataset, tag, element, path, mode)

    def _public(self, dataset: Dataset, tag: int, element: DataElement | RawDataElement,
                path: tuple[str, ...], mode: str) -> None:
        vr = self._vr(dataset, tag, element)
        if mode == "dummy":
            self._dummied(dataset, tag, vr, path)
            return
        rule = self._choose(self.profile.rules_for_tag(tag), path)
        if rule is None and mode == "clean" and vr in CLEANED_VRS:
            # Text no rule names, in a cleaned sequence: cleaned, as the sequence is.
            self._record("C", None)
            self._clean_text(dataset, tag, vr, path)
            return
        rule = rule or self._unlisted(tag, vr)
        if rule is None and vr in BINARY_VRS and tag not in PIXEL_DATA_TAGS and \
                self._holds_identity(element):
            # E.1.1: binary data no rule names is kept as numbers; bytes that spell the
            # instance's names or IDs are text that identifies.
            self._record("X", None)
            del dataset[tag]
        elif rule is None:
            self._unruled(dataset, tag, vr, path, mode)
        else:
            self._apply(dataset, tag, vr, rule, path)

    def _unlisted(self, tag: int, vr: str) -> Rule | None:
        """The unlisted policy's rule for an element no rule names. One whose VR in the file
        is not the dictionary's (text sent as OB) is what the dictionary says it is (PS3.6),
        unless the policy keeps that: the file's VR decides then."""
        rule = self.profile.unlisted_rule(tag, vr)
        info = standard.element_by_tag(tag)
        if info is None or vr in info.vr.split("/"):
            return rule
        return self.profile.unlisted_rule(tag, info.vr.split("/")[0]) or rule

    def _dummied(self, dataset: Dataset, tag: int, vr: str, path: tuple[str, ...]) -> None:
        """An element inside a dummied sequence. The sequence's action covers all of its
        contents (PS3.15 Table E.1-1a), so no rule of a nested attribute decides it again:
        text and dates get dummy values, UIDs are replaced, attributes the dictionary does not
        know are removed; coded values, numbers and binary data are kept."""
        if vr == "SQ":
            self._record("D", None)
            self._dummy_sequence(dataset, tag, path)
        elif not standard.in_dictionary(tag):
            self._record("X", None)
            del dataset[tag]
        elif vr == "UI":
            rule = self._uid_kept(tag, path)
            if rule is not None:
                self._record("K", rule)  # E.3.9: all UIDs are retained, in SR content too
                return
            self._record("U", None)
            self._replace_uids(dataset, tag)
        elif vr in DUMMIED_VRS:
            self._record("D", None)
            self._dated(dataset, tag, vr, "removed")
            _overwrite(dataset, tag, vr, dummy_value(vr, tag))
        else:
            self._record("K", None)

    def _dummy_sequence(self, dataset: Dataset, tag: int, path: tuple[str, ...]) -> None:
        """A sequence dummied as a whole: rewritten from its bytes while it is still as read
        (dummied.py), else item by item. A trace records each element, so it goes item by
        item."""
        raw = dataset.get_item(tag)
        implicit, little = dataset.original_encoding
        if self.trace is None and isinstance(raw, RawDataElement) and \
                type(raw.value) is bytes and raw.length != UNDEFINED_LENGTH and little is True \
                and (raw.VR or pydicom_vr(tag)) == "SQ":  # else pydicom reads no items
            dummier = Dummier(implicit is True, lambda t, p: self._uid_kept(t, p) is not None,
                              lambda uid: replace_uid(self.key, uid))
            rewritten = dummier.rewrite(raw.value, (*path, keyword_of(tag)))
            if rewritten is not None:
                dataset[tag] = raw._replace(value=rewritten.value, length=len(rewritten.value))
                self.uid_map.update(rewritten.uids)
                if rewritten.dated:
                    self.dates.add("removed")
                return
        self._recurse(dataset, tag, path, "dummy")

    def _uid_kept(self, tag: int, path: tuple[str, ...]) -> Rule | None:
        """The rule that keeps a UID inside a dummied sequence (the Retain UIDs Option keeps
        them all, PS3.15 E.3.9; a dummy UID would leave an SR pointing at a replaced twin of a
        kept image's UID), or None: then it is replaced like any dummied UID."""
        rule = (self._choose(self.profile.rules_for_tag(tag), path)
                or self.profile.unlisted_rule(tag, "UI"))
        return rule if rule is not None and rule.action == "K" else None

    def _private(self, dataset: Dataset, tag: int, element: DataElement | RawDataElement,
                 creators: dict[tuple[int, int], str], path: tuple[str, ...],
                 mode: str) -> None:
        group, elem = tag >> 16, tag & 0xFFFF
        creator = creators.get((group, elem >> 8)) if elem >= 0x1000 else None
        vr = self._vr(dataset, tag, element)
        if not creator or group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF) or mode == "dummy":
            # No private creator: nothing can say it is safe; in a dummied sequence, the
            # sequence's action covers it (Table E.1-1a).
            self._record("X", None)
            del dataset[tag]
            return
        rule = self._choose(self.profile.private_rules(creator, group, elem & 0xFF), path)
        if rule is not None and rule.vr is not None and not _agrees(element, rule.vr):
            # E.3.10: the element Table E.3.10-1 calls safe has that VR; text where it says DS
            # is another element (or another vendor's reuse of the tag).
            self._record("X", rule)
            del dataset[tag]
        elif rule is not None and rule.action == "K" and self._holds_identity(element):
            # E.3.10 keeps a private element known to be safe: one that holds the instance's
            # names or IDs (text sent as UN or OB where the vendor stores numbers) is not.
            self._record("X", rule)
            del dataset[tag]
        elif rule is not None:
            self._apply(dataset, tag, vr, rule, path)
        elif self.profile.private == "keep":
            self._unruled(dataset, tag, vr, path, mode)
        elif vr == "SQ" and self.profile.by_private:
            # PS3.15 E.3.10: a private sequence not known to be safe is parsed in its entirety
            # and each nested attribute handled on its own merits.
            self._recurse(dataset, tag, path, mode)
            if not any(len(item) for item in dataset[tag].value):
                del dataset[tag]
        else:
            self._record("X", None)
            del dataset[tag]

    def _holds_identity(self, element: DataElement | RawDataElement) -> bool:
        """Whether a private element's value, as read (the bytes of one read without its VR,
        before pydicom's private dictionary makes them numbers), holds a word of the
        instance's names or IDs, those coded values are cleaned of. A sequence: no (the
        profile applies inside)."""
        value = element.value
        if not self.code_words or value is None or isinstance(value, Sequence):
            return False
        if not isinstance(value, bytes):
            text = " ".join(values_of(value))
            return self._may_hold_identity(text) and bool(self._identity_pattern.search(text))
        return self._byte_words.search(value)

    @functools.cached_property
    def _byte_words(self) -> _ByteWords:
        """The name and ID words of at least MIN_BYTES characters (shorter ones match binary
        data by chance), in the spellings and encodings bytes may hold them in."""
        return _ByteWords({case(word).encode(encoding)
                           for word in self.code_words if len(word) >= MIN_BYTES
                           for case in (str.upper, str.lower, str.title)
                           for encoding in ("utf-8", "latin-1")
                           if _encodes(case(word), encoding)})

    def _drop_unused_creators(self, dataset: Dataset, creators: dict[tuple[int, int], str]):
        """A private creator stays only while an element of its block does (E.3.10)."""
        used = {(t >> 16, (t & 0xFFFF) >> 8) for t in dataset.keys()  # noqa: SIM118
                if (t >> 16) % 2 and (t & 0xFFFF) >= 0x1000}
        for group, block in creators:
            if (group, block) not in used:
                del dataset[(group << 16) | block]

    def _recurse(self, dataset: Dataset, tag: int, path: tuple[str, ...], mode: str) -> None:
        inner = (*path, keyword_of(tag))
        decided = self._decided  # the sequence's own decision, not its last descendant's
        raw = dataset.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.VR is None and pydicom_vr(tag) != "SQ":
            # Read without its VR (implicit VR), a sequence newer than pydicom's dictionary is
            # bytes to pydicom, and to deid verify: what the profile does inside it could not
            # be checked, so the instance is not written (fail closed).
            raise Rejected("unreadable", f"{keyword_of(tag)} {tag_text(tag)} is a sequence "
                           "newer than pydicom's data dictionary, which cannot read it in "
                           "implicit VR")
        for item in dataset[tag].value:
            self.process(item, inner, mode)
        self._decided = decided

    def _record(self, action: str, rule: Rule | None) -> None:
        if self.trace is not None:
            self._decided = (action, rule)

    # --- actions --------------------------------------------------------------------------

    def _unruled(self, dataset: Dataset, tag: int, vr: str, path: tuple[str, ...],
                 mode: str) -> None:
        """An element neither a rule nor the unlisted policy names: kept (a sequence: the
        profile applies inside)."""
        self._record("K", None)
        if vr == "SQ":
            self._recurse(dataset, tag, path, mode)
        else:
            self._dated(dataset, tag, vr, "kept")

    def _dated(self, dataset: Dataset, tag: int, vr: str, outcome: str) -> None:
        """Note what happened to a date or time with a value, for Longitudinal Temporal
        Information Modified (PS3.15 E.3.6)."""
        if vr in DATE_VRS and dataset.get_item(tag).value:
            self.dates.add(outcome)

    def temporal(self) -> str:
        """Longitudinal Temporal Information Modified from what happened to this instance's
        dates: MODIFIED if one was shifted, else UNMODIFIED if one was kept, else REMOVED if
        one was removed; the profile's own value for an instance without dates."""
        for outcome, value in (("shifted", "MODIFIED"), ("kept", "UNMODIFIED"),
                               ("removed", "REMOVED")):
            if outcome in self.dates:
                return value
        return self.profile.temporal

    def _resolve(self, code: str, tag: int, path: tuple[str, ...]) -> str:
        """A compound code resolved by the attribute's Type in this instance's IOD
        (PS3.15 Table E.1-1a): Type 3 -> X, Type 2 -> Z, Type 1 -> D or U."""
        alternatives = COMPOUND[code]
        keyword = keyword_of(tag)
        # Unknown Type: the most conservative alternative, but where the table itself says X
        # (only an IOD that requires the attribute keeps it), X.
        unknown = alternatives[0 if standard.removed_unless_required(keyword) else -1]
        kind = self._type(tag, path)
        if kind == "":
            # Not in this IOD at all: E.1-1 notes say such attributes may simply be removed.
            return alternatives[0]
        if kind is None:
            return unknown  # an unknown SOP class, or defined in the IOD but not at this path
        needed = {"3": ("X", "Z", "D", "U"), "2": ("Z", "D", "U"), "1": ("D", "U")}[kind]
        return next(a for a in alternatives if a in needed)

    def _type(self, tag: int, path: tuple[str, ...]) -> str | None:
        """The attribute's Type here ('1', '2', '3'; a 1C or 2C as 1 or 2 when its condition
        holds, else 3), '' when the IOD does not define it, None when unknown."""
        if self.iod is None:
            return None
        keyword = keyword_of(tag)
        kind = standard.attribute_type(self.iod, keyword, path)
        if kind is not None and kind.endswith("C"):
            kind = kind[0] if self._condition(standard.condition_of(keyword)) else "3"
        return kind

    def _condition(self, condition: str | None) -> bool:
        """Whether the condition of a 1C or 2C Type holds for this instance. 'animal': PS3.3
        C.7.1.1, the patient is an animal when Patient Species Description (0010,2201) or
        Patient Species Code Sequence (0010,2202) is present (both are 1C: required if so)."""
        if condition == "animal":
            return self.animal
        return False

    def _apply(self, dataset: Dataset, tag: int, vr: str, rule: Rule,
               path: tuple[str, ...]) -> None:
        action = rule.action
        if action in COMPOUND:
            action = self._resolve(action, tag, path)
        self._record(action, rule)
        if action in ("X", "Z", "D", "K"):
            self._dated(dataset, tag, vr, "kept" if action == "K" else "removed")
        if action == "X":
            del dataset[tag]
        elif action == "K":
            if vr == "SQ":
                self._recurse(dataset, tag, path, "apply")
            elif vr in CLEANED_VRS and tag not in ID_TAGS and not (tag >> 16) % 2 and \
                    self._raw_may_hold_identity(dataset, tag):
                # Text kept by the unlisted policy's reviewers as known to carry no identity
                # (PS3.15 E.1.1), or by an option that retains the device's, the institution's
                # or the patient's characteristics (E.3): none of them retains the patient's
                # name or IDs, so a value that carries them loses them, as coded values do.
                self._clean_text(dataset, tag, vr, path, self._without_identity)
        elif action == "Z":
            _overwrite(dataset, tag, vr, empty_value(vr))
        elif action == "D":
            if vr == "UI":
                self._replace_uids(dataset, tag)  # a dummy UID is a replaced one
            elif vr == "SQ":
                self._dummy_sequence(dataset, tag, path)
            else:
                _overwrite(dataset, tag, vr, dummy_value(vr, tag))
        elif action == "U":
            if vr == "SQ":
                self._recurse(dataset, tag, path, "apply")
            else:
                self._replace_uids(dataset, tag)
        elif action == "C":
            self._clean(dataset, tag, vr, path, rule)
        elif action == "shift":
            self._shift(dataset, tag)
        elif action == "hash":
            self._hash(dataset, tag)
        elif action == "replace":
            self._replace(dataset, tag, rule)
        elif action == "lookup":
            self._lookup(dataset, tag, vr, rule, path)

    def _mismatch(self, dataset: Dataset, tag: int) -> None:
        """The element's VR in this file does not fit the rule's action (a malformed file,
        or a private element): it cannot be transformed, so it is removed (fail closed)."""
        self._record("X", self._decided[1])
        del dataset[tag]

    def _replace_uids(self, dataset: Dataset, tag: int) -> None:
        element = dataset.get_item(tag)
        uids = raw_uids(element)
        if uids is None:
            element = dataset[tag]
        if uids is None and element.VR not in ("UI", "LO", "SH", "UN"):
            self._mismatch(dataset, tag)
            return
        new = []
        for uid in values_of(element.value) if uids is None else uids:
            replaced = replace_uid(self.key, uid)
            if replaced != uid.strip("\0 "):
                self.uid_map[uid.strip("\0 ")] = replaced
            new.append(replaced)
        if not new:
            if uids is not None and element.value:
                # A blank value: written empty, as pydicom writes the value it decodes to.
                dataset[tag] = encoded_text(dataset, tag, "UI", "")
            return
        encoded = (encoded_text(dataset, tag, "UI", "\\".join(new))
                   if uids is not None or element.VR == "UI" else None)
        if encoded is None:
            element.value = _store(new)
        else:
            dataset[tag] = encoded  # written as it is, not re-encoded

    def _clean(self, dataset: Dataset, tag: int, vr: str, path: tuple[str, ...],
               rule: Rule) -> None:
        """C, by what the value is (the option decides which attributes; PS3.15 E.3):
        sequences get the profile inside and their text cleaned; text loses the instance's
        identifying values; dates are shifted; UIDs replaced; binary data, which cannot be
        read for identifying content, is removed; numbers and codes are kept."""
        if rule.allow is not None or rule.allow_patterns:
            self._allow_only(dataset, tag, rule)
        elif vr == "SQ":
            self._recurse(dataset, tag, path, "clean")
        elif vr in TEXT_VRS:
            self._clean_text(dataset, tag, vr, path)
        elif vr in ("DA", "DT", "TM"):
            self._shift(dataset, tag)
        elif vr == "UI":
            self._replace_uids(dataset, tag)
        elif vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            del dataset[tag]

    def _allow_only(self, dataset: Dataset, tag: int, rule: Rule) -> None:
        """Clean by an allow-list the curator wrote: a value listed, or matching a listed
        pattern, is kept; anything else is removed with the element."""
        values = values_of(dataset[tag].value)
        allowed = rule.allow or frozenset()
        if not values or all(v in allowed or any(re.search(p, v) for p in rule.allow_patterns)
                             for v in values):
            return
        self._record("X", rule)
        del dataset[tag]

    def _clean_text(self, dataset: Dataset, tag: int, vr: str, path: tuple[str, ...],
                    clean: Callable[[str], str] | None = None) -> None:
        if vr == "CS" and clean is None and not may_hold(dataset, tag, self._ascii_code_words):
            return  # the common case, left as read: decoding it would have it re-encoded
        element = dataset[tag]
        values = values_of(element.value)
        clean = clean or (self._clean_code if vr == "CS" else functools.partial(self._scrub,
                                                                                 vr=vr))
        cleaned = [clean(v) for v in values]
        if cleaned == values:
            return
        if not any(cleaned) and self._type(tag, path) == "1":
            # All of it was identifying, but the IOD needs a value (PS3.15 E.1: the IOD stays
            # whole): a dummy, which says nothing.
            _overwrite(dataset, tag, vr, dummy_value(vr, tag))
            return
        element.value = _store(cleaned)

    def _without_identity(self, value: str) -> str:
        """Text without the words of the instance's names and IDs, wherever they stand
        (a URN's last segment too)."""
        if not self.code_words or not self._may_hold_identity(value):
            return value
        cleaned = self._identity_pattern.sub("", value)
        return value if cleaned == value else squeezed(cleaned).strip(" _")

    @functools.cached_property
    def _identity_words(self) -> tuple[str, ...]:
        """The name and ID words looked for in kept text, case-folded, those that contain
        another left out: text holds a word, whole or in part, only if it holds one of these."""
        return cores({w.casefold() for w in self.code_words if len(w) >= MIN_WORD})

    @functools.cached_property
    def _identity_pattern(self) -> re.Pattern:
        return _word_pattern(w for w in self.code_words if len(w) >= MIN_WORD)

    def _may_hold_identity(self, text: str) -> bool:
        """Whether a name or ID word occurs in the text at all, whole or not: a cheap test
        first, since most text holds none and compiling the instance's pattern costs about
        a millisecond."""
        folded = text.casefold()
        return any(word in folded for word in self._identity_words)

    def _raw_may_hold_identity(self, dataset: Dataset, tag: int) -> bool:
        """_may_hold_identity on an element still as read, without decoding it."""
        return bool(self._identity_words) and may_hold(dataset, tag,
                                                       self._ascii_identity_words)

    @functools.cached_property
    def _ascii_code_words(self) -> tuple[bytes, ...]:
        """The words coded values are cleaned of (_clean_code), those in ASCII, as lower-case
        bytes."""
        return cores(w.lower().encode() for w in self.code_words if w.isascii())

    @functools.cached_property
    def _ascii_identity_words(self) -> tuple[bytes, ...]:
        """The words kept text is cleaned of (_may_hold_identity), those in ASCII, as bytes."""
        return tuple(w.encode() for w in self._identity_words if w.isascii())

    def _scrub(self, value: str, vr: str) -> str:
        """Free text cleaned: its identifiers removed, and a UID typed into it replaced as the
        element holding it is (PS3.15 E.1-1: UIDs are U), so the text still points at the
        de-identified instance, not at the original; removed where the longer replacement
        would not fit the VR's length (PS3.5 Table 6.2-1)."""
        cleaned = self.scrub(value)
        replaced = UID_IN_TEXT.sub(lambda m: replace_uid(self.key, m.group(0)), cleaned)
        if len(replaced) <= MAX_CHARS.get(vr, len(replaced)):
            return replaced
        return squeezed(UID_IN_TEXT.sub("", cleaned)).strip()

    def _clean_code(self, value: str) -> str:
        """A coded value without the words of the instance's names and IDs (a set lookup per
        word: it runs on every CS value)."""
        hits = set(CODE_WORD.split(value.upper())) & self.code_words
        if not hits:
            return value
        words = "|".join(map(re.escape, sorted(hits, key=len, reverse=True)))
        cleaned = re.sub(f"(?<![0-9A-Z])(?:{words})(?![0-9A-Z])", "", value, flags=re.IGNORECASE)
        return re.sub(" {2,}", " ", cleaned).strip(" _")

    def _shift(self, dataset: Dataset, tag: int) -> None:
        element = dataset[tag]
        info = standard.element_by_tag(tag)
        kind = element.VR if element.VR in DATE_VRS else (info.vr if info else "")
        if kind not in DATE_VRS:
            self._mismatch(dataset, tag)
            return
        values = values_of(element.value)
        if not values:
            return
        self.dates.add("kept" if kind == "TM" else "shifted")  # a shift keeps times of day
        shifted = dates.shift_values(kind, values, self.offset())
        # A value that cannot be parsed is removed, never passed through.
        element.value = _store(shifted) if shifted is not None else None

    def _hash(self, dataset: Dataset, tag: int) -> None:
        element = dataset[tag]
        if element.VR == "UI":
            self._replace_uids(dataset, tag)
            return
        if element.VR not in TEXT_VRS:
            self._mismatch(dataset, tag)
            return
        element.value = _store([self._text_hash(v) for v in values_of(element.value)]) or None

    def _text_hash(self, value: str) -> str:
        return self.key.digest(b"text", value.strip().encode("utf-8")).hex()[:16].upper()

    def _replace(self, dataset: Dataset, tag: int, rule: Rule) -> None:
        if rule.template is None:
            dataset[tag].value = rule.value
            return
        original = "\\".join(values_of(dataset[tag].value))
        self.templates.append((dataset, tag, rule, self._text_hash(original)))

    def _lookup(self, dataset: Dataset, tag: int, vr: str, rule: Rule,
                path: tuple[str, ...]) -> None:
        lookup = rule.lookup
        assert lookup is not None
        if lookup.key_tag is None:
            original = "\\".join(values_of(dataset[tag].value)).strip()
        else:
            original = "\\".join(self.originals.get(lookup.key_tag, [])).strip()
        replacement = lookup.get(original, self.key)
        if replacement is not None:
            dataset[tag].value = replacement
        elif lookup.missing == "reject":
            # Noted, and rejected once the pass is over (check_lookups), so that the record
            # says how many distinct values the tables lack; the element goes meanwhile.
            self.missing.setdefault((lookup.file, tag, str(rule.source)), set()).add(
                seal_value(self.key, original))
            del dataset[tag]
        else:
            self._apply(dataset, tag, vr, Rule(lookup.missing, rule.selector, rule.source,
                                               rule.profile), path)

    def check_lookups(self) -> None:
        """Reject an instance whose values some lookup table lacks (missing: reject), saying
        how many distinct values are missing from each table and for which attributes, never
        which values."""
        if not self.missing:
            return
        by_file: dict[str, tuple[set[str], list[str]]] = {}
        for (file, tag, source), digests in self.missing.items():
            name = file.replace("\\", "/").rsplit("/", 1)[-1]
            values, where = by_file.setdefault(name, (set(), []))
            values |= digests
            where.append(f"{keyword_of(tag)} {tag_text(tag)} (rule at {source})")
        raise Rejected("lookup_missing", "; ".join(
            f"{len(values)} distinct value{'s' if len(values) != 1 else ''} "
            f"{'have' if len(values) != 1 else 'has'} no entry in lookup file {name}: "
            f"{', '.join(where)}" for name, (values, where) in sorted(by_file.items())))

    def render_templates(self) -> None:
        """Templates last, so that their {Keyword} fields read de-identified values; a
        template that reads another template's target waits for it to be rendered, so no
        original value is ever copied."""
        pending = list(self.templates)
        unrendered = {tag for dataset, tag, _, _ in pending if dataset is self.top}
        while pending:
            ready = [entry for entry in pending if not any(
                (info := standard.element_by_keyword(name)) and info.tag in unrendered
                for name in entry[2].template_fields if name != "hash")]
            if not ready:
                raise Rejected("profile_error", "replace templates read each other in a cycle")
            for entry in ready:
                dataset, tag, rule, digest = entry
                fields = {"hash": digest}
                for name in rule.template_fields:
                    if name != "hash":
                        info = standard.element_by_keyword(name)
                        element = self.top.get(info.tag) if info else None
                        fields[name] = "\\".join(values_of(element.value)) if element else ""
                dataset[tag].value = rule.template.format(**fields)
                pending.remove(entry)
                if dataset is self.top:
                    unrendered.discard(tag)


def sop_class_of(dataset: Dataset) -> str:
    """The instance's SOP Class UID, or '', read without decoding the element."""
    return (uids_of(dataset, SOP_CLASS) or [""])[0] if SOP_CLASS in dataset else ""


def _check_required(dataset: Dataset, when: str, valid: bool) -> None:
    """The UIDs that place an instance in its study and series, and name its output file,
    are present and single-valued and, when ``valid``, syntactically valid UIDs."""
    for tag, keyword in REQUIRED.items():
        values = uids_of(dataset, tag) if tag in dataset else []
        if len(values) != 1 or not values[0].strip("\0 "):
            raise Rejected("missing_attribute", f"{keyword} {tag_text(tag)} is missing or not "
                           f"single-valued {when}")
        uid = values[0].strip("\0 ")
        if valid and not is_valid_uid(uid):
            raise Rejected("invalid_uid", f"{keyword} {tag_text(tag)} is not a valid UID {when}")


def _add_markers(dataset: Dataset, profile: Profile, temporal: str) -> None:
    """PS3.15 E.1.1: Patient Identity Removed YES (only when the Basic Profile was applied)
    and the method, as text and as CID 7050 codes; E.2 and E.3.6: Longitudinal Temporal
    Information Modified, as it happened to this instance's dates."""
    implicit, little = dataset.original_encoding
    markers = (profile.names, profile.editions, profile.method_codes, temporal, profile.basic)
    elements = _markers(*markers, implicit is True, little is not False)
    if elements is None:  # encoded when written, in the data set's character set
        built = _marker_dataset(*markers)
        elements = tuple(built[tag] for tag in sorted(built.keys()))  # noqa: SIM118
    for element in elements:
        dataset[element.tag] = element
    if profile.burned_in == "clean" and any(tag in dataset for tag in PIXEL_DATA_TAGS):
        # E.3.1: with the Clean Pixel Data Option, Burned In Annotation is added as NO to an
        # image (one at risk is only written once its pixels are cleaned).
        dataset[BURNED_IN_ANNOTATION] = (encoded_text(dataset, BURNED_IN_ANNOTATION, "CS", "NO")
                                         or DataElement(BURNED_IN_ANNOTATION, "CS", "NO"))


def _marker_dataset(names: tuple[str, ...], editions: tuple[str, ...],
                    codes: tuple[MethodCode, ...], temporal: str, basic: bool) -> Dataset:
    markers = Dataset()
    if basic:
        markers.PatientIdentityRemoved = "YES"
    methods = [f"deid PS3.15 {'/'.join(sorted(set(editions))) or 'custom'}", *names]
    markers.DeidentificationMethod = [n[:64] for n in methods]
    items = []
    for code in codes:
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme
        item.CodeMeaning = code.meaning
        items.append(item)
    markers.DeidentificationMethodCodeSequence = Sequence(items)
    markers.LongitudinalTemporalInformationModified = temporal
    return markers


@functools.lru_cache(maxsize=64)
def _markers(names: tuple[str, ...], editions: tuple[str, ...], codes: tuple[MethodCode, ...],
             temporal: str, basic: bool, implicit: bool,
             little: bool) -> tuple[RawDataElement, ...] | None:
    """The markers of a profile, encoded once: the same for every instance. None unless their
    text is ASCII, the same in every character set (encoded_elements uses the default one,
    not the data set's: a profile's own names may need another)."""
    texts = [*names, *editions, temporal,
             *(text for code in codes for text in (code.value, code.scheme, code.meaning))]
    if not all(text.isascii() for text in texts):
        return None
    return encoded_elements(_marker_dataset(names, editions, codes, temporal, basic), implicit,
                            little)


def original_values(dataset: Dataset, profile: Profile) -> dict[int, list[str]]:
    """The original values the profile's rules read, and those the date offset is derived
    from, as text, before anything changes (top-level elements)."""
    return {tag: _texts(dataset, tag)
            for tag in (PATIENT_ID, STUDY_UID, *profile.original_tags) if tag in dataset}


def _texts(dataset: Dataset, tag: int) -> list[str]:
    """A present element's values as text, each stripped, decoding it only when need be."""
    read = texts_of(dataset, tag)
    return read[1] if read is not None else [v.strip() for v in values_of(dataset[tag].value)]


def pixel_plan(dataset: Dataset, profile: Profile) -> PixelPlan:
    """What the profile does to an instance's pixels (read from its original header).
    Raises Rejected when the instance cannot be written for its pixels."""
    return plan_pixels(dataset, profile, original_values(dataset, profile))


def _cleaning_syntax(dataset: Dataset, transfer_syntax: str | None) -> str:
    if transfer_syntax is None:
        meta = getattr(dataset, "file_meta", None)
        transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not transfer_syntax:
        raise Rejected("unsupported_transfer_syntax", "the transfer syntax is unknown, so Pixel "
                       "Data (7FE0,0010) cannot be cleaned")
    return str(transfer_syntax)


def deidentify_dataset(dataset: Dataset, profile: Profile, key: SecretKey,
                       trace: list[Decision] | None = None,
                       transfer_syntax: str | None = None) -> Deidentified:
    """De-identify a dataset in place and return it with its mappings. ``transfer_syntax``,
    the one its Pixel Data is encoded in (default: its file meta), is needed to clean pixels.

    Raises Rejected when the instance cannot be fully de-identified; the dataset is then in
    an undefined state and must not be written.
    """
    _check_required(dataset, "in the input", valid=False)
    # PS3.15 E.3.1: decided on the original header, applied after the element pass.
    read = original_values(dataset, profile)
    pixels = plan_pixels(dataset, profile, read)
    run = _Run(dataset, profile, key, trace, read)
    run.process(dataset, (), "apply")
    run.check_lookups()
    run.render_templates()
    run.check_vrs()
    written_syntax = None
    if pixels.cleans:
        written_syntax = clean_pixels(dataset, pixels,
                                      _cleaning_syntax(dataset, transfer_syntax))
    _add_markers(dataset, profile, run.temporal())
    _check_required(dataset, "after de-identification", valid=True)
    old_id = (run.originals.get(PATIENT_ID) or [""])[0]
    new_id = ("\\".join(values_of(dataset[PATIENT_ID].value))
              if has_value(dataset, PATIENT_ID) else "")
    # A patient crosswalk row for every original ID, an emptied or removed one as "".
    ids = (old_id, new_id) if old_id else None
    return Deidentified(dataset, run.uid_map, ids, written_syntax)


__all__ = ["Decision", "Deidentified", "Rejected", "deidentify_dataset", "pixel_plan",
           "sop_class_of", "uids_of"]

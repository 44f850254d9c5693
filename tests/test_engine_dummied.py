"""A dummied sequence rewritten from its bytes (deid/engine/dummied.py) comes out as the engine
writes it element by element: the same bytes, the same UID mappings, the same rejections."""

from __future__ import annotations

import random
from pathlib import Path

import pydicom.data
import pytest
from compare import assert_same_both_ways
from dicom_factory import KEY, base_dataset, to_bytes
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from deid.engine import Output, deidentify_bytes
from deid.engine.dummied import Dummier
from deid.profile import load_profiles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"  # never copied here
TEST_FILES = sorted(p for p in (Path(pydicom.data.__file__).parent / "test_files").rglob("*")
                    if p.is_file() and p.suffix not in (".py", ".pyc")
                    and "__pycache__" not in p.parts)
# Dates dummied or kept decide the temporal marker; Retain UIDs keeps the UIDs inside.
PROFILES = [load_profiles(["basic"]), load_profiles(["basic", "retain-uids"]),
            load_profiles(["basic", "retain-long-full-dates"])]


@pytest.fixture
def rewrites(monkeypatch) -> list[bool]:
    """Whether each rewrite was done (True) or left to the engine (False)."""
    done: list[bool] = []
    rewrite = Dummier.rewrite

    def counted(self, value, path):
        result = rewrite(self, value, path)
        done.append(result is not None)
        return result
    monkeypatch.setattr(Dummier, "rewrite", counted)
    return done


def _both_ways(data: bytes, profile, monkeypatch) -> tuple[object, object]:
    fast = deidentify_bytes(data, profile, KEY)
    with monkeypatch.context() as patched:
        patched.setattr(Dummier, "rewrite", lambda self, value, path: None)
        slow = deidentify_bytes(data, profile, KEY)
    return fast, slow


def _assert_same_both_ways(paths: list[Path], monkeypatch) -> int:
    return assert_same_both_ways(paths, PROFILES, lambda data, profile: _both_ways(
        data, profile, monkeypatch))


def test_pydicom_test_files_come_out_the_same(monkeypatch, rewrites):
    # SR content trees, waveform annotations, implicit and explicit VR, undefined lengths.
    assert _assert_same_both_ways(TEST_FILES, monkeypatch) > 300
    assert rewrites.count(True) >= 3  # the rewrite ran, so the comparison means something


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the checkout")
def test_the_corpus_comes_out_the_same(monkeypatch, rewrites):
    paths = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() in (".dcm", ""))
    assert _assert_same_both_ways(paths, monkeypatch) > 50
    assert rewrites.count(True) >= 3


def _content_item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _report(transfer_syntax: str | None = None) -> bytes:
    """A content tree with names, dates, UIDs, codes, numbers, a private element, an unknown
    public tag, nested and empty sequences."""
    ds = base_dataset()
    concept = _content_item(CodeValue="121008", CodingSchemeDesignator="DCM",
                            CodeMeaning="Person Observer Name")
    person = _content_item(RelationshipType="HAS OBS CONTEXT", ValueType="PNAME",
                           ConceptNameCodeSequence=Sequence([concept]),
                           PersonName="Dubois^Chloe")
    dated = _content_item(RelationshipType="CONTAINS", ValueType="DATETIME",
                          DateTime="20200315101112", ObservationDateTime="20200315",
                          ConceptNameCodeSequence=Sequence([]))
    image = _content_item(ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                          ReferencedSOPInstanceUID="1.2.826.0.1.3680043.8.498.9")
    reference = _content_item(RelationshipType="CONTAINS", ValueType="IMAGE",
                              ReferencedSOPSequence=Sequence([image]))
    reference.add_new(0x00290010, "LO", "ACME 1.0")
    reference.add_new(0x00291001, "LO", "Dubois")
    reference.add_new(0x00410010, "LO", "unknown public tag")
    number = _content_item(RelationshipType="CONTAINS", ValueType="TEXT",
                           TextValue="Chloe Dubois, seen 15 March", ObservationUID="")
    ds.ContentSequence = Sequence([person, dated, reference, number])
    return to_bytes(ds, transfer_syntax) if transfer_syntax else to_bytes(ds)


@pytest.mark.parametrize("transfer_syntax", [None, ImplicitVRLittleEndian])
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: "+".join(p.names))
def test_a_built_content_tree_comes_out_the_same(transfer_syntax, profile, monkeypatch,
                                                 rewrites):
    fast, slow = _both_ways(_report(transfer_syntax), profile, monkeypatch)
    assert rewrites == [True]
    assert isinstance(fast, Output) and isinstance(slow, Output)
    assert fast.data == slow.data
    assert fast.uid_map == slow.uid_map
    assert b"Dubois" not in fast.data and b"Chloe" not in fast.data


@pytest.mark.parametrize("cut", [1, 9, 40, 100])
def test_a_malformed_sequence_is_left_to_the_engine(cut):
    """A value that ends inside an item or element is not rewritten: the element-by-element
    path decides (and rejects what pydicom cannot read)."""
    ds = base_dataset()
    ds.ContentSequence = Sequence([_content_item(TextValue="Dubois", ValueType="TEXT",
                                                 ObservationUID=f"1.2.3.4.{n}")
                                   for n in range(3)])
    value = to_bytes(ds)
    sequence = value[value.index(b"\x40\x00\x30\xa7"):]  # (0040,A730) and what follows
    items = sequence[12:]  # after the explicit VR SQ header
    dummier = Dummier(False, lambda tag, path: False, lambda uid: "2.25." + uid[-1])
    whole = dummier.rewrite(items, ("ContentSequence",))
    assert whole is not None and b"Dubois" not in whole.value
    assert whole.uids == {f"1.2.3.4.{n}": f"2.25.{n}" for n in range(3)}
    assert dummier.rewrite(items[:-cut], ("ContentSequence",)) is None  # nothing noted


def test_mutated_content_trees_come_out_as_the_engine_writes_them(monkeypatch):
    """Bytes flipped at random inside an SR's Content Sequence (seeded): whatever the rewrite
    accepts, it writes as the element-by-element path does, or that path rejects it too."""
    data = Path(pydicom.data.get_testdata_file("test-SR.dcm")).read_bytes()
    start = data.index(b"\x40\x00\x30\xa7")
    profile = PROFILES[0]
    generator = random.Random(7050)
    for _ in range(200):
        mutated = bytearray(data)
        for _ in range(generator.randint(1, 3)):
            mutated[generator.randrange(start + 12, len(data))] = generator.randrange(256)
        fast, slow = _both_ways(bytes(mutated), profile, monkeypatch)
        if isinstance(slow, Output):
            assert isinstance(fast, Output) and fast.data == slow.data
        else:
            assert fast == slow or not isinstance(fast, Output)


def test_a_sequence_pydicom_does_not_know_is_left_to_the_engine(monkeypatch, rewrites):
    """In implicit VR, pydicom reads a sequence its dictionary lacks (Sensitive Content Code
    Sequence, new in 2025) as bytes: the walk leaves it to the engine, which rejects the
    instance saying why, as it does wherever such a sequence stands."""
    ds = base_dataset()
    item = _content_item(ValueType="TEXT", TextValue="Dubois")
    item.add_new(0x0008001D, "SQ", Sequence([_content_item(CodeValue="X", CodeMeaning="x")]))
    ds.ContentSequence = Sequence([item])
    fast, slow = _both_ways(to_bytes(ds, ImplicitVRLittleEndian), PROFILES[0], monkeypatch)
    assert rewrites == [False]  # the Content Sequence; the nested one is not tried
    assert fast == slow
    assert fast.reason == "unreadable"
    assert "SensitiveContentCodeSequence (0008,001D) is a sequence newer" in fast.message

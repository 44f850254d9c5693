"""Fuzzing the engine with mutated real files (bit flips, truncation, corrupted lengths and
VRs, inserted and deleted bytes). The property: every input ends as exactly one of an output
or a rejection with a known reason, no exception escapes, and every output passes verify.

The default run is short and deterministic; `pytest -m slow tests/test_fuzz.py -s` runs many
more cases and prints the outcomes by reason.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path

import pytest
from dicom_factory import KEY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.data import get_testdata_file

from deid.engine import Output, Rejection, deidentify_bytes
from deid.profile import load_profiles
from deid.verify import verify_pair

# Chosen for variety: explicit and implicit VR little endian, big endian, nested sequences,
# private blocks, encapsulated (compressed) pixel data, a sequence sent as UN.
SEEDS = ("CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm",
         "JPEG2000.dcm", "rtdose_rle.dcm")
REASONS = {"unreadable", "not_dicom", "burned_in_annotation", "missing_attribute",
           "invalid_uid", "dicomdir", "unsupported_transfer_syntax", "write_failed"}
LONG_LENGTH_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
PROFILES = {name: load_profiles([name]) for name in ("basic", "tcia")}


def _fields(data: bytes) -> tuple[list[tuple[int, int]], list[int]]:
    """(offset, size) of each top-level element's length field, and the offsets of its VR
    (explicit VR files only), from where pydicom says each value starts."""
    dataset = dcmread(io.BytesIO(data))
    implicit = dataset.original_encoding[0]
    lengths, vrs = [], []
    for tag in dataset.keys():  # noqa: SIM118
        raw = dataset.get_item(tag)
        start = getattr(raw, "value_tell", None)
        if start is None:
            continue
        if implicit or raw.VR in LONG_LENGTH_VRS:
            lengths.append((start - 4, 4))
            if not implicit:
                vrs.append(start - 8)
        else:
            lengths.append((start - 2, 2))
            vrs.append(start - 4)
    return lengths, vrs


SEED_DATA = {name: Path(get_testdata_file(name)).read_bytes() for name in SEEDS}
SEED_FIELDS = {name: _fields(data) for name, data in SEED_DATA.items()}


class Case:
    """A mutated seed; its repr (shown for a failing example) names the mutations only."""

    def __init__(self, seed: str, mutations: tuple[str, ...], data: bytes):
        self.seed, self.mutations, self.data = seed, mutations, data

    def __repr__(self) -> str:
        return f"Case({self.seed!r}, {self.mutations!r}, <{len(self.data)} bytes>)"


@st.composite
def mutated(draw) -> Case:
    """A seed file with one to three mutations."""
    name = draw(st.sampled_from(SEEDS))
    data = bytearray(SEED_DATA[name])
    lengths, vrs = SEED_FIELDS[name]
    done = []
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        kind = draw(st.sampled_from(("flip", "truncate", "length", "vr", "insert", "delete")))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "length" and lengths:
            at, size = draw(st.sampled_from(lengths))
            edge = st.sampled_from([0, 1, 0xFF, 0xFFFF, 0xFFFFFFFF, len(data)])
            value = draw(st.one_of(edge, st.integers(0, 256 ** size - 1))) % 256 ** size
            data[at:at + size] = value.to_bytes(size, "little")
        elif kind == "vr" and vrs:
            at = draw(st.sampled_from(vrs))
            data[at:at + 2] = draw(st.sampled_from(
                [b"SQ", b"UN", b"OB", b"UT", b"PN", b"US", b"FD", b"AT", b"??", b"\0\0"]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        done.append(f"{kind}@{at}")
    return Case(name, tuple(done), bytes(data))


def _replaced(seed: str, *changes: tuple[int, bytes]) -> Case:
    data = bytearray(SEED_DATA[seed])
    for at, new in changes:
        data[at:at + len(new)] = new
    return Case(seed, tuple(f"replace@{at}" for at, _ in changes), bytes(data))


# Cases fuzzing found, kept as regressions: the File Meta Information Version's group made 3
# and ImageType's VR 'C[' (the engine wrote the element back and the output no longer parsed);
# Manufacturer's VR made US (its bytes still spell a removed InstitutionName: kept, no leak);
# an invalid SOP Class UID under the DICOM root (kept as it is, as the Standard's UIDs are).
FOUND = (_replaced("JPEG2000.dcm", (144, b"\x03"), (341, b"[")),
         _replaced("MR_small_bigendian.dcm", (610, b"US")),
         _replaced("rtplan.dcm", (2603, b"\x00")))
OUTCOMES: Counter = Counter()


def _check(case: Case, profile_name: str) -> None:
    profile = PROFILES[profile_name]
    result = deidentify_bytes(case.data, profile, KEY)  # must never raise
    assert isinstance(result, Output | Rejection)
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        OUTCOMES[result.reason] += 1
        return
    findings = verify_pair(case.data, result.data, profile).findings
    assert findings == []
    OUTCOMES["written"] += 1


FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=10000)


@FAST
@given(case=mutated(), profile_name=st.sampled_from(sorted(PROFILES)))
@example(case=FOUND[0], profile_name="basic")
@example(case=FOUND[1], profile_name="basic")
@example(case=FOUND[2], profile_name="basic")
def test_mutated_files_end_as_output_or_rejection(case, profile_name):
    _check(case, profile_name)


@pytest.mark.slow
@SLOW
@given(case=mutated(), profile_name=st.sampled_from(sorted(PROFILES)))
def test_mutated_files_long_run(case, profile_name):
    _check(case, profile_name)


@pytest.fixture(autouse=True, scope="module")
def _report_outcomes():
    start = time.monotonic()
    yield
    total = sum(OUTCOMES.values())
    print(f"\nfuzz: {total} cases in {time.monotonic() - start:.1f} s: "
          + ", ".join(f"{reason} {n}" for reason, n in OUTCOMES.most_common()))

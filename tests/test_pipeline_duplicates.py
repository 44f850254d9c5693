"""Inputs that become the same instance (one instance in several files): which one is written
is --prefer_duplicate's choice, the smallest input path (default) or the input in the transfer
syntax most of the run's instances have."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from pydicom.data import get_testdata_file

from deid.beam import WriteInstances
from deid.beam.records import DUPLICATE
from deid.engine import Output, deidentify_bytes
from deid.keys import SecretKey
from deid.profile import load_profiles
from pipelines.deidentify import plan

KEY = SecretKey(b"duplicates-tests-0123456789abcdef", "tests")


@pytest.fixture(scope="module")
def outputs() -> dict[str, Output]:
    profile = load_profiles(["basic"])
    out = {}
    for name in ("MR_small.dcm", "MR_small_RLE.dcm", "CT_small.dcm"):
        result = deidentify_bytes(Path(get_testdata_file(name)).read_bytes(), profile, KEY)
        assert isinstance(result, Output)
        out[name] = result
    assert out["MR_small.dcm"].sop_instance_uid == out["MR_small_RLE.dcm"].sop_instance_uid
    assert out["MR_small.dcm"].transfer_syntax_uid == out["CT_small.dcm"].transfer_syntax_uid
    return out


@pytest.mark.parametrize("prefer, written, duplicate", [
    ("smallest-path", "/in/a.dcm", "/in/b.dcm"),
    ("common-syntax", "/in/b.dcm", "/in/a.dcm"),  # explicit VR: two of the run's three
])
def test_prefer_duplicate_chooses_the_input_written(prefer, written, duplicate, outputs,
                                                    tmp_path):
    elements = [("/in/a.dcm", outputs["MR_small_RLE.dcm"]),
                ("/in/b.dcm", outputs["MR_small.dcm"]),
                ("/in/c.dcm", outputs["CT_small.dcm"])]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        result = p | beam.Create(elements) | WriteInstances(str(tmp_path / "out"), "run1",
                                                            prefer=prefer)
        assert_that(result["written"] | beam.Map(lambda s: s.input),
                    equal_to([written, "/in/c.dcm"]), label="written")
        assert_that(result["quarantine"] | beam.Map(lambda r: (r.input, r.reason)),
                    equal_to([(duplicate, DUPLICATE)]), label="duplicates")


def test_the_option_is_checked_and_defaults_to_the_smallest_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.dcm").write_bytes(b"x")  # an input folder without files is refused
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "-p", "basic"]
    assert plan(argv).prefer_duplicate == "smallest-path"
    assert plan([*argv, "--prefer-duplicate", "common-syntax"]).prefer_duplicate == \
        "common-syntax"


@pytest.mark.parametrize("counts, written", [(None, "/in/a.dcm"), ("common", "/in/b.dcm")])
def test_a_dicomweb_output_chooses_the_same_way(counts, written, outputs):
    from deid.beam.dicomweb import ChooseFn
    from deid.beam.write import QUARANTINE

    group = [("/in/a.dcm", outputs["MR_small_RLE.dcm"]), ("/in/b.dcm", outputs["MR_small.dcm"])]
    syntax = outputs["MR_small.dcm"].transfer_syntax_uid
    with BeamTestPipeline(runner="FnApiRunner") as p:
        side = {}
        if counts:
            side["syntax_counts"] = beam.pvalue.AsDict(p | "Counts" >> beam.Create(
                [(syntax, 2), (outputs["MR_small_RLE.dcm"].transfer_syntax_uid, 1)]))
        chosen = (p | beam.Create([("uid", group)])
                  | beam.ParDo(ChooseFn(), **side).with_outputs(QUARANTINE, main="chosen"))
        assert_that(chosen.chosen | beam.Map(lambda pair: pair[0]), equal_to([written]),
                    label="chosen")

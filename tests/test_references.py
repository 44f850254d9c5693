"""A de-identified collection stays a valid, linked collection (issue 13).

The linked collection (tests/linked_collection.py: two CT series, one derived from the other, a
SEG, a TID 1500 SR measuring a CT image and a SEG segment, a GSPS, an RTSTRUCT and a KOS) goes
through `deid run` once per profile: every reference among its instances resolves in the
output, none is lost, no original UID survives (but under Retain UIDs), and dciodvfy reports no
error the input did not have. `deid verify` checks the references by its own means, and finds
what an older profile lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dciodvfy import needs_dciodvfy, new_errors
from linked_collection import build
from pydicom import dcmread

from deid.cli import main as cli
from deid.engine import deidentify_bytes
from deid.keys import SecretKey
from deid.profile import load_profiles
from deid.verify.pair import is_well_known
from pipelines.deidentify import main as run

SECRET = "linked-collection-0123456789abcdef"
PROFILES = {"basic": ["basic"], "tcia": ["tcia"], "retain-uids": ["basic", "retain-uids"]}


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("linked") / "in"


@pytest.fixture(scope="module")
def runs(collection: Path) -> dict[str, Path]:
    """One `deid run` per profile over the collection: profile name -> output folder."""
    build(collection)
    outputs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEID_SECRET", SECRET)
        for name, profiles in PROFILES.items():
            out = collection.parent / f"out-{name}"
            arguments = ["--input", str(collection), "--output", str(out)]
            assert run([*arguments, *(a for p in profiles for a in ("--profile", p))]) == 0
            outputs[name] = out
    return outputs


def _verify(collection: Path, out: Path, profiles: list[str], capsys) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEID_SECRET", SECRET)
        capsys.readouterr()
        code = cli(["verify", "--original", str(collection), "--deidentified", str(out),
                    *(a for p in profiles for a in ("-p", p)), "--json", "-"])
    report = json.loads(capsys.readouterr().out)
    report["exit"] = code
    return report


def _uids(path: Path) -> set[str]:
    """Every UID value of a file, at any depth, but those the Standard registers."""
    found: set[str] = set()
    pending = [dcmread(path)]
    while pending:
        for element in pending.pop():
            if element.VR == "SQ":
                pending.extend(element.value)
            elif element.VR == "UI" and element.value:
                values = element.value if element.VM > 1 else [element.value]
                found |= {str(v) for v in values if not is_well_known(str(v))}
    return found


def _outputs(out: Path) -> list[Path]:
    return sorted(out.rglob("*.dcm"))


@pytest.mark.parametrize("name", PROFILES)
def test_every_reference_resolves_and_none_is_lost(name: str, collection, runs, capsys):
    report = _verify(collection, runs[name], PROFILES[name], capsys)
    assert report["by_check"] == {} and report["exit"] == 0
    # The SEG's per-frame and top-level source images, the derived series' source and
    # referenced images, the SR's evidence, image, segment, source series and tracking UID,
    # the GSPS's images, the RTSTRUCT's frame of reference, series and contour images, the
    # KOS's evidence and content: 49 references among the 11 instances.
    assert report["references"] == {"resolved": 49, "unresolved": 0, "lost": 0}


@pytest.mark.parametrize("name", PROFILES)
def test_no_original_uid_survives_but_under_retain_uids(name: str, collection, runs):
    originals = set().union(*(_uids(p) for p in collection.glob("*.dcm")))
    written = set().union(*(_uids(p) for p in _outputs(runs[name])))
    assert len(_outputs(runs[name])) == 11
    if name == "retain-uids":
        assert written == originals
    else:
        assert originals & written == set()


def test_the_seg_keeps_its_per_frame_source_images(runs):
    seg = next(dcmread(p) for p in _outputs(runs["basic"]) if dcmread(p).Modality == "SEG")
    for frame in seg.PerFrameFunctionalGroupsSequence:
        (source,) = frame.DerivationImageSequence[0].SourceImageSequence
        assert source.ReferencedSOPInstanceUID


def test_the_gsps_keeps_a_dummy_creation_date_and_time(runs):
    gsps = next(dcmread(p) for p in _outputs(runs["basic"]) if dcmread(p).Modality == "PR")
    assert (gsps.PresentationCreationDate, gsps.PresentationCreationTime) == ("19000101",
                                                                              "000000")


@needs_dciodvfy
@pytest.mark.parametrize("name", PROFILES)
def test_outputs_add_no_dciodvfy_error(name: str, collection, runs):
    by_sop = {str(dcmread(p, specific_tags=["SOPInstanceUID"]).SOPInstanceUID): p
              for p in collection.glob("*.dcm")}
    pairs = []
    for output in _outputs(runs[name]):
        # The output's own UIDs are new; its Instance Number and Modality name its input.
        out = dcmread(output, stop_before_pixels=True)
        source = next(p for p in by_sop.values() if _same_instance(dcmread(p), out))
        pairs.append((source, output))
    assert len(pairs) == 11
    assert new_errors(pairs) == {}


def _same_instance(original, output) -> bool:
    return (original.Modality, original.SeriesNumber, original.InstanceNumber) == (
        output.Modality, output.SeriesNumber, output.InstanceNumber)


def test_verify_finds_references_a_profile_loses_or_breaks(collection, runs, tmp_path, capsys):
    """The profiles as they were before issue 13: X/Z/U* resolved by Type (the SEG's per-frame
    source images emptied, the derived series' references removed), and the SR's UIDREFs
    replaced while Retain UIDs keeps the images' and the SEG's. Lost: the SEG's three
    per-frame and three top-level Source Image references, the derived series' three Source
    and three Referenced Image references; unresolved: the SR's source series and tracking
    UID."""
    (tmp_path / "old.yaml").write_text(
        "name: old\nextends: [basic]\nrules:\n"
        "- {attribute: SourceImageSequence, action: X/Z/U*}\n"
        "- {attribute: ReferencedImageSequence, action: X/Z/U*}\n")
    (tmp_path / "old-uids.yaml").write_text(
        "name: old-uids\nextends: [basic, retain-uids]\nrules:\n"
        "- {attribute: UID, action: U}\n")
    expected = {"old.yaml": {"resolved": 37, "unresolved": 0, "lost": 12},
                "old-uids.yaml": {"resolved": 47, "unresolved": 2, "lost": 0}}
    key = SecretKey(SECRET.encode(), "tests")
    for name, counts in expected.items():
        profile = str(tmp_path / name)
        out = tmp_path / f"out-{name}"
        out.mkdir()
        for index, source in enumerate(sorted(collection.glob("*.dcm"))):
            result = deidentify_bytes(source.read_bytes(), load_profiles([profile]), key)
            (out / f"{index}.dcm").write_bytes(result.data)
        report = _verify(collection, out, [profile], capsys)
        assert report["exit"] == 1 and report["references"] == counts
        assert {f["check"] for f in report["set_findings"]} == {
            check for check in ("unresolved", "lost") if counts[check]}

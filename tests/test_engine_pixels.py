"""The engine with pixel rules (PS3.15 E.3.1): plans read the original header, cleaning runs
after the element pass, and every instance at risk that nothing covers stays rejected."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dicom_factory import KEY, base_dataset, to_bytes
from pixel_images import text_mask
from pixel_instances import PROFILE, image, us_regions
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

import deid.pixels
from deid.engine import Output, Rejection, deidentify_bytes
from deid.pixels import Cleaned, Region
from deid.profile import load_profiles


@pytest.fixture
def site(tmp_path):
    def load(ultrasound: str = "'off'", ocr: str = "'off'", extra: str = ""):
        path = tmp_path / "site.yaml"
        path.write_text(PROFILE.format(ultrasound=ultrasound, ocr=ocr) + extra)
        return load_profiles([str(path)])
    return load


def run(ds: Dataset, profile) -> Output | Rejection:
    return deidentify_bytes(to_bytes(ds), profile, KEY)


def written(ds: Dataset, profile) -> Dataset:
    result = run(ds, profile)
    assert isinstance(result, Output), result
    return dcmread(io.BytesIO(result.data))


def blanked(out: Dataset) -> np.ndarray:
    """(frames, rows, columns): True where the pixel is blank."""
    frames = int(out.get("NumberOfFrames") or 1)
    return np.frombuffer(out.PixelData, np.uint8).reshape(frames, 48, 64) == 0


def rows_blanked(mask: np.ndarray) -> list[int]:
    return [int(r) for r in np.nonzero(mask.all(axis=1))[0]]


def test_a_rule_matches_original_values_the_profile_removes(site):
    out = written(image(model="SonoOne"), site())
    assert "Manufacturer" not in out and "ManufacturerModelName" not in out
    (frame,) = blanked(out)
    assert rows_blanked(frame) == list(range(8))  # acme-top-bar, the first that matches
    assert not frame[8:].any()


def test_the_first_matching_rule_wins(site):
    (frame,) = blanked(written(image(model="Other"), site()))  # only acme-any matches
    assert rows_blanked(frame) == list(range(40, 48)) and not frame[:40].any()


def test_a_later_profiles_rule_is_tried_first(site, tmp_path):
    site()  # writes site.yaml
    (tmp_path / "later.yaml").write_text("""\
name: later
extends: [site.yaml]
pixels:
  rules:
  - {name: acme-left, match: {Manufacturer: ACME}, blank: [[0, 0, 4, 48]]}
""")
    (frame,) = blanked(written(image(model="SonoOne"),
                               load_profiles([str(tmp_path / "later.yaml")])))
    assert frame[:, :4].all() and not frame[:, 4:].any()


def test_a_region_with_frames_blanks_only_those_frames(site):
    out = written(image(manufacturer="FRAMES", frames=3), site())
    mask = blanked(out)
    assert mask[1, :16, :16].all() and mask.sum() == 16 * 16
    assert out.NumberOfFrames == 3


def test_ultrasound_regions_keep_only_the_inside(site):
    ds = image(manufacturer="NOBODY")
    ds.SequenceOfUltrasoundRegions = us_regions((8, 10, 55, 39))
    (frame,) = blanked(written(ds, site(ultrasound="keep-inside")))
    assert not frame[10:40, 8:56].any()
    frame[10:40, 8:56] = True
    assert frame.all()


def test_cleaned_instances_say_so(site):
    out = written(image(model="SonoOne"), site())
    assert out.BurnedInAnnotation == "NO"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113101"]


def test_burned_in_clean_without_extending_the_option_still_records_113101(tmp_path):
    (tmp_path / "own.yaml").write_text("""\
name: own
extends: [basic]
burned_in: clean
pixels:
  rules:
  - {name: all-us, match: {Modality: US}, blank: [[0, 0, 64, 8]]}
""")
    out = written(image(), load_profiles([str(tmp_path / "own.yaml")]))
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100", "113101"]
    assert out.BurnedInAnnotation == "NO" and rows_blanked(blanked(out)[0]) == list(range(8))


def test_an_instance_no_rule_touches_keeps_its_pixel_data_byte_for_byte(site, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("pixels decoded for an instance no rule touches")

    monkeypatch.setattr(deid.pixels, "blank_regions", never)
    ds = image("CT", manufacturer="NOBODY")
    out = written(ds, site(ultrasound="keep-inside"))
    assert out.PixelData == ds.PixelData
    assert out.BurnedInAnnotation == "NO"  # E.3.1: added by the option, to images
    assert "BurnedInAnnotation" not in written(base_dataset(), site())


def test_a_rule_also_cleans_an_instance_not_flagged_at_risk(site):
    (frame,) = blanked(written(image("CT", model="SonoOne", burned="NO"), site()))
    assert rows_blanked(frame) == list(range(8))


@pytest.mark.parametrize(("ds", "ultrasound", "message"), [
    (image("US", manufacturer="NOBODY"), "'off'",
     "no pixel-cleaning rule covers this instance: no pixel rule matches "
     "(ultrasound_regions: off)"),
    (image("SC", manufacturer=None), "keep-inside",
     "no pixel rule matches and it has no Sequence of Ultrasound Regions (0018,6011) to keep"),
    (image("CT", manufacturer="NOBODY", burned="YES"), "keep-inside",
     "BurnedInAnnotation (0028,0301) is YES"),
])
def test_an_instance_at_risk_that_nothing_covers_stays_rejected(site, ds, ultrasound, message):
    result = run(ds, site(ultrasound=ultrasound))
    assert isinstance(result, Rejection) and result.reason == "burned_in_annotation"
    assert message in result.message and "NOBODY" not in result.message


def test_the_pixel_librarys_refusal_rejects_with_its_reason(site, tmp_path):
    ds = image(manufacturer="NOBODY")
    ds.SequenceOfUltrasoundRegions = us_regions((50, 10, 8, 39))  # max below min
    result = run(ds, site(ultrasound="keep-inside"))
    assert isinstance(result, Rejection)
    assert result.reason == "malformed_ultrasound_regions" and "(0018,6011)" in result.message
    (tmp_path / "wide.yaml").write_text("""\
name: wide
extends: [clean-pixel-data]
pixels:
  rules:
  - {name: off-image, match: {Modality: US}, blank: [[100, 0, 8, 8]]}
""")
    result = run(image(), load_profiles([str(tmp_path / "wide.yaml")]))
    assert isinstance(result, Rejection) and result.reason == "region_outside_image"


def test_ocr_without_tesseract_rejects(site, monkeypatch):
    monkeypatch.setattr(deid.pixels, "ocr_available", lambda: False)
    result = run(image(model="SonoOne"), site(ocr="check"))
    assert isinstance(result, Rejection) and result.reason == "ocr_unavailable"
    # An instance nothing cleans is not looked at, so it needs no Tesseract.
    assert isinstance(run(image("CT", manufacturer="NOBODY"), site(ocr="check")), Output)


def test_ocr_check_rejects_text_that_remains_and_redact_blanks_it(site, monkeypatch):
    monkeypatch.setattr(deid.pixels, "ocr_available", lambda: True)
    monkeypatch.setattr(deid.pixels, "find_text",
                        lambda ds, syntax: [Region(60, 20, 4, 4, frames=(1,))])
    result = run(image(model="SonoOne"), site(ocr="check"))
    assert isinstance(result, Rejection) and result.reason == "text_remains"
    assert result.message == ("text detection finds 1 box(es) of text in Pixel Data "
                              "(7FE0,0010) after cleaning in frame(s) 1")
    (frame,) = blanked(written(image(model="SonoOne"), site(ocr="redact")))
    assert frame[20:24, 60:64].all() and rows_blanked(frame) == list(range(8))
    assert frame.sum() == 8 * 64 + 16


def test_the_output_is_written_in_the_syntax_cleaning_returns(site, monkeypatch):
    real = deid.pixels.blank_regions

    def implicit(ds, syntax, regions, keep_only=()):
        real(ds, syntax, regions, keep_only=keep_only)
        return Cleaned(ImplicitVRLittleEndian, 1)

    monkeypatch.setattr(deid.pixels, "blank_regions", implicit)
    result = run(image(model="SonoOne"), site())
    assert isinstance(result, Output) and result.transfer_syntax_uid == ImplicitVRLittleEndian
    out = dcmread(io.BytesIO(result.data))
    assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert rows_blanked(blanked(out)[0]) == list(range(8))


def test_without_the_pixels_extra_an_instance_to_clean_is_rejected(site, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pixels(name, *args, **kwargs):
        if name == "deid.pixels":
            raise ImportError("no numpy", name="numpy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pixels)
    result = run(image(model="SonoOne"), site())
    assert isinstance(result, Rejection) and result.reason == "pixels_unavailable"
    assert "numpy" in result.message
    assert isinstance(run(image("CT", manufacturer="NOBODY"), site()), Output)


@pytest.mark.skipif(not deid.pixels.ocr_available(), reason="Tesseract is not installed")
def test_tesseract_finds_text_the_rules_missed(site):
    def with_text() -> Dataset:
        ds = image(model="SonoOne")  # acme-top-bar blanks [0, 0, 64, 8], not the text
        ds.Rows, ds.Columns = 120, 320
        pixels = np.zeros((120, 320), np.uint8)
        pixels[text] = 255
        ds.PixelData = pixels.tobytes()
        return ds

    text, _box = text_mask(120, 320, "DOE JANE 1961", 20, 60)
    result = run(with_text(), site(ocr="check"))
    assert isinstance(result, Rejection) and result.reason == "text_remains"
    assert "DOE" not in result.message
    out = written(with_text(), site(ocr="redact"))
    assert not np.frombuffer(out.PixelData, np.uint8).reshape(120, 320)[text].any()

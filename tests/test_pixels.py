"""deid.pixels: blanking regions of Pixel Data, ultrasound regions, errors. Every test checks
both sides: the regions hold only the blank value, every other pixel is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.pixels.utils import pack_bits
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from deid.pixels import PixelError, Region, blank_regions, find_text, ultrasound_regions
from tests.pixel_images import inside, pydicom_file, text_mask, transfer_syntax


def _decoded(ds: Dataset) -> np.ndarray:
    """Every frame as (frames, rows, columns[, samples]), colour kept as stored."""
    arr = pixel_array(ds, raw=True)
    return arr.reshape(int(ds.get("NumberOfFrames") or 1), *arr.shape[-3 + (
        ds.SamplesPerPixel == 1):])


def _set_native(ds: Dataset, arr: np.ndarray) -> None:
    """Write `arr` back as little-endian native Pixel Data."""
    if ds.BitsAllocated == 1:
        ds.PixelData = pack_bits(arr)
    else:
        ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def _assert_blanked(before: np.ndarray, after: np.ndarray, mask: np.ndarray, blank) -> None:
    """`mask` (frames, rows, columns) holds only `blank`; everything else is as before."""
    assert after.shape == before.shape
    assert (after[mask] == blank).all()
    assert (after[~mask] == before[~mask]).all()


def test_text_drawn_into_a_ct_is_gone_and_the_rest_untouched():
    ds = pydicom_file("CT_small.dcm")  # MONOCHROME2, signed 16 bits
    arr = _decoded(ds)
    text, box = text_mask(ds.Rows, ds.Columns, "DOE^JANE", 4, 4, size=16)
    arr[0][text] = arr.max()
    _set_native(ds, arr)
    before = _decoded(ds)

    cleaned = blank_regions(ds, transfer_syntax(ds), [box])

    assert cleaned.transfer_syntax == transfer_syntax(ds) and cleaned.frames == 1
    mask = inside(box, ds.Rows, ds.Columns)[None]
    _assert_blanked(before, _decoded(ds), mask, -32768)


@pytest.mark.parametrize(("photometric", "blank"), [("MONOCHROME2", 0), ("MONOCHROME1", 4095)])
def test_monochrome_blank_displays_black(photometric: str, blank: int):
    ds = pydicom_file("examples_overlay.dcm")  # 12 of 16 bits, unsigned
    ds.PhotometricInterpretation = photometric
    before = _decoded(ds)
    region = Region(10, 20, 100, 30)

    blank_regions(ds, transfer_syntax(ds), [region])

    _assert_blanked(before, _decoded(ds), inside(region, ds.Rows, ds.Columns)[None], blank)


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                                  "MR_small_padded.dcm", "image_dfl.dcm", "rtdose.dcm",
                                  "rtdose_expb.dcm", "SC_rgb_small_odd_big_endian.dcm",
                                  "ExplVR_BigEnd.dcm", "examples_rgb_color.dcm"])
def test_native_syntaxes_stay_native(name: str):
    ds = pydicom_file(name)
    before = _decoded(ds)
    region = Region(1, 1, 2, 1)
    syntax = transfer_syntax(ds)

    cleaned = blank_regions(ds, syntax, [region])

    assert cleaned.transfer_syntax == syntax
    mask = np.broadcast_to(inside(region, ds.Rows, ds.Columns), before.shape[:3])
    minimum = 0 if ds.PixelRepresentation == 0 else -(1 << (ds.BitsStored - 1))
    _assert_blanked(before, _decoded(ds), mask, minimum)


def test_multi_frame_regions_blank_only_their_frames():
    ds = pydicom_file("rtdose.dcm")  # 15 frames, 32 bits
    before = _decoded(ds)
    region = Region(2, 3, 4, 5, frames=(2, 15))

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert cleaned.frames == 2
    mask = np.zeros(before.shape, dtype=bool)
    mask[[1, 14]] = inside(region, ds.Rows, ds.Columns)
    _assert_blanked(before, _decoded(ds), mask, 0)


@pytest.mark.parametrize("name", ["liver_1frame.dcm", "liver_expb_1frame.dcm"])
def test_one_bit_pixels(name: str):
    ds = pydicom_file(name)
    arr = _decoded(ds)
    text, box = text_mask(ds.Rows, ds.Columns, "LIVER 01", 300, 10, size=30)
    arr[0][text] = 1
    ds.PixelData = pack_bits(arr)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # pack_bits is not byte-swapped
    before = _decoded(ds)

    blank_regions(ds, ExplicitVRLittleEndian, [box])

    _assert_blanked(before, _decoded(ds), inside(box, ds.Rows, ds.Columns)[None], 0)


def test_rgb_planar_configuration_one():
    ds = pydicom_file("ExplVR_BigEnd.dcm")  # RGB, Planar Configuration 1, big endian
    before = _decoded(ds)
    region = Region(10, 5, 30, 20)

    blank_regions(ds, transfer_syntax(ds), [region])

    assert ds.PlanarConfiguration == 1
    _assert_blanked(before, _decoded(ds), inside(region, ds.Rows, ds.Columns)[None], 0)


def test_ybr_full_422_is_expanded_so_no_pixel_outside_shares_blanked_chroma():
    ds = pydicom_file("SC_ybr_full_422_uncompressed.dcm")
    before = _decoded(ds)  # pydicom expands 4:2:2 to full resolution
    region = Region(11, 7, 20, 10)  # odd left edge: it splits a Cb Cr pair

    blank_regions(ds, transfer_syntax(ds), [region])

    assert ds.PhotometricInterpretation == "YBR_FULL"
    assert len(ds.PixelData) == ds.Rows * ds.Columns * 3
    mask = inside(region, ds.Rows, ds.Columns)[None]
    _assert_blanked(before, _decoded(ds), mask, [0, 128, 128])


def test_palette_color_blanks_with_the_darkest_entry():
    ds = pydicom_file("examples_palette.dcm")
    before = _decoded(ds)
    region = Region(0, 0, 50, 40)

    blank_regions(ds, transfer_syntax(ds), [region])

    from pydicom.pixels.processing import apply_color_lut
    after = _decoded(ds)
    blank = int(after[0, 0, 0])
    lut = apply_color_lut(np.arange(256, dtype=np.uint8), ds).astype(int)
    assert lut[blank].sum() == lut.sum(axis=1).min()
    _assert_blanked(before, after, inside(region, ds.Rows, ds.Columns)[None], blank)


def test_keep_only_blanks_everything_outside_the_ultrasound_regions():
    ds = pydicom_file("examples_rgb_color.dcm")
    ds.SequenceOfUltrasoundRegions = Sequence([
        _us_region(20, 30, 119, 89), _us_region(200, 100, 299, 199)])
    before = _decoded(ds)
    regions = ultrasound_regions(ds)
    assert regions == [Region(20, 30, 100, 60), Region(200, 100, 100, 100)]

    blank_regions(ds, transfer_syntax(ds), [], keep_only=regions)

    kept = inside(regions[0], ds.Rows, ds.Columns) | inside(regions[1], ds.Rows, ds.Columns)
    _assert_blanked(before, _decoded(ds), ~kept[None], 0)


def _us_region(min_x: int, min_y: int, max_x: int, max_y: int) -> Dataset:
    item = Dataset()
    item.RegionLocationMinX0, item.RegionLocationMinY0 = min_x, min_y
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = max_x, max_y
    return item


def test_ultrasound_regions_absent_or_malformed():
    ds = Dataset()
    assert ultrasound_regions(ds) == []
    ds.SequenceOfUltrasoundRegions = Sequence([_us_region(10, 10, 5, 20)])
    with pytest.raises(PixelError) as error:
        ultrasound_regions(ds)
    assert error.value.reason == "malformed_ultrasound_regions"
    del ds.SequenceOfUltrasoundRegions[0].RegionLocationMaxY1
    with pytest.raises(PixelError, match=r"\(0018,6011\) item 1"):
        ultrasound_regions(ds)


def test_nothing_asked_decodes_nothing():
    ds = Dataset()  # no pixel data at all: any decoding would fail
    cleaned = blank_regions(ds, "1.2.840.10008.1.2.4.50", [])
    assert (cleaned.transfer_syntax, cleaned.frames) == ("1.2.840.10008.1.2.4.50", 0)


def _rejection(ds: Dataset, syntax: str, regions: list[Region]) -> str:
    with pytest.raises(PixelError) as error:
        blank_regions(ds, syntax, regions)
    return error.value.reason


def test_rejections_name_no_values():
    ct = pydicom_file("CT_small.dcm")
    syntax = transfer_syntax(ct)
    assert _rejection(ct, syntax, [Region(500, 500, 10, 10)]) == "region_outside_image"
    assert _rejection(ct, syntax, [Region(0, 0, 0, 10)]) == "invalid_region"
    assert _rejection(ct, syntax, [Region(0, 0, 5, 5, frames=(2,))]) == "region_outside_image"
    assert _rejection(ct, "1.2.3.4", [Region(0, 0, 5, 5)]) == "unsupported_transfer_syntax"
    short = pydicom_file("CT_small.dcm")
    short.PixelData = short.PixelData[:-4]
    assert _rejection(short, syntax, [Region(0, 0, 5, 5)]) == "pixel_data_length"
    floats = pydicom_file("CT_small.dcm")
    floats.FloatPixelData = b"\x00" * 16
    assert _rejection(floats, syntax, [Region(0, 0, 5, 5)]) == "float_pixel_data"
    missing = pydicom_file("CT_small.dcm")
    del missing.BitsStored
    with pytest.raises(PixelError, match="BitsStored") as error:
        blank_regions(missing, syntax, [Region(0, 0, 5, 5)])
    assert "DOE" not in str(error.value) and error.value.reason == "missing_attribute"


def test_find_text_without_tesseract_says_so(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(PixelError) as error:
        find_text(pydicom_file("CT_small.dcm"), ExplicitVRLittleEndian)
    assert error.value.reason == "ocr_unavailable"


def test_one_bit_big_endian_as_stored():
    ds = pydicom_file("liver_expb_1frame.dcm")
    before = _decoded(ds)
    region = Region(3, 5, 17, 9)

    blank_regions(ds, transfer_syntax(ds), [region])

    _assert_blanked(before, _decoded(ds), inside(region, ds.Rows, ds.Columns)[None], 0)

"""deid.pixels: blanking regions of Pixel Data, ultrasound regions, errors. Every test checks
both sides: the regions hold only the blank value, every other pixel is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate_extended, generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from deid.pixels import PixelError, Region, blank_regions, find_text, ultrasound_regions
from tests.pixel_images import draw_text, frames_of, inside, pydicom_file, transfer_syntax


def _assert_blanked(before: np.ndarray, after: np.ndarray, mask: np.ndarray, blank) -> None:
    """`mask` (frames, rows, columns) holds only `blank`; everything else is as before."""
    assert after.shape == before.shape
    assert (after[mask] == blank).all()
    assert (after[~mask] == before[~mask]).all()


def test_text_drawn_into_a_ct_is_gone_and_the_rest_untouched():
    ds = pydicom_file("CT_small.dcm")  # MONOCHROME2, signed 16 bits
    box = draw_text(ds, "DOE^JANE", 4, 4, size=16)
    before = frames_of(ds)

    cleaned = blank_regions(ds, transfer_syntax(ds), [box])

    assert cleaned.transfer_syntax == transfer_syntax(ds) and cleaned.frames == 1
    mask = inside(box, ds.Rows, ds.Columns)[None]
    _assert_blanked(before, frames_of(ds), mask, -32768)


@pytest.mark.parametrize(("photometric", "blank"), [("MONOCHROME2", 0), ("MONOCHROME1", 4095)])
def test_monochrome_blank_displays_black(photometric: str, blank: int):
    ds = pydicom_file("examples_overlay.dcm")  # 12 of 16 bits, unsigned
    ds.PhotometricInterpretation = photometric
    before = frames_of(ds)
    region = Region(10, 20, 100, 30)

    blank_regions(ds, transfer_syntax(ds), [region])

    _assert_blanked(before, frames_of(ds), inside(region, ds.Rows, ds.Columns)[None], blank)


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                                  "MR_small_padded.dcm", "image_dfl.dcm", "rtdose.dcm",
                                  "rtdose_expb.dcm", "SC_rgb_small_odd_big_endian.dcm",
                                  "ExplVR_BigEnd.dcm", "examples_rgb_color.dcm"])
def test_native_syntaxes_stay_native(name: str):
    ds = pydicom_file(name)
    before = frames_of(ds)
    region = Region(1, 1, 2, 1)
    syntax = transfer_syntax(ds)

    cleaned = blank_regions(ds, syntax, [region])

    assert cleaned.transfer_syntax == syntax
    mask = np.broadcast_to(inside(region, ds.Rows, ds.Columns), before.shape[:3])
    minimum = 0 if ds.PixelRepresentation == 0 else -(1 << (ds.BitsStored - 1))
    _assert_blanked(before, frames_of(ds), mask, minimum)


def test_multi_frame_regions_blank_only_their_frames():
    ds = pydicom_file("rtdose.dcm")  # 15 frames, 32 bits
    before = frames_of(ds)
    region = Region(2, 3, 4, 5, frames=(2, 15))

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert cleaned.frames == 2
    mask = np.zeros(before.shape, dtype=bool)
    mask[[1, 14]] = inside(region, ds.Rows, ds.Columns)
    _assert_blanked(before, frames_of(ds), mask, 0)


def test_one_bit_pixels():
    ds = pydicom_file("liver_1frame.dcm")
    box = draw_text(ds, "LIVER 01", 300, 10, size=30)
    before = frames_of(ds)

    blank_regions(ds, transfer_syntax(ds), [box])

    _assert_blanked(before, frames_of(ds), inside(box, ds.Rows, ds.Columns)[None], 0)


def test_rgb_planar_configuration_one():
    ds = pydicom_file("ExplVR_BigEnd.dcm")  # RGB, Planar Configuration 1, big endian
    before = frames_of(ds)
    region = Region(10, 5, 30, 20)

    blank_regions(ds, transfer_syntax(ds), [region])

    assert ds.PlanarConfiguration == 1
    _assert_blanked(before, frames_of(ds), inside(region, ds.Rows, ds.Columns)[None], 0)


def test_ybr_full_422_is_expanded_so_no_pixel_outside_shares_blanked_chroma():
    ds = pydicom_file("SC_ybr_full_422_uncompressed.dcm")
    before = frames_of(ds)  # pydicom expands 4:2:2 to full resolution
    region = Region(11, 7, 20, 10)  # odd left edge: it splits a Cb Cr pair

    blank_regions(ds, transfer_syntax(ds), [region])

    assert ds.PhotometricInterpretation == "YBR_FULL"
    assert len(ds.PixelData) == ds.Rows * ds.Columns * 3
    mask = inside(region, ds.Rows, ds.Columns)[None]
    _assert_blanked(before, frames_of(ds), mask, [0, 128, 128])


def test_palette_color_blanks_with_the_darkest_entry():
    ds = pydicom_file("examples_palette.dcm")
    before = frames_of(ds)
    region = Region(0, 0, 50, 40)

    blank_regions(ds, transfer_syntax(ds), [region])

    from pydicom.pixels.processing import apply_color_lut
    after = frames_of(ds)
    blank = int(after[0, 0, 0])
    lut = apply_color_lut(np.arange(256, dtype=np.uint8), ds).astype(int)
    assert lut[blank].sum() == lut.sum(axis=1).min()
    _assert_blanked(before, after, inside(region, ds.Rows, ds.Columns)[None], blank)


def test_keep_only_blanks_everything_outside_the_ultrasound_regions():
    ds = pydicom_file("examples_rgb_color.dcm")
    ds.SequenceOfUltrasoundRegions = Sequence([
        _us_region(20, 30, 119, 89), _us_region(200, 100, 299, 199)])
    before = frames_of(ds)
    regions = ultrasound_regions(ds)
    assert regions == [Region(20, 30, 100, 60), Region(200, 100, 100, 100)]

    blank_regions(ds, transfer_syntax(ds), [], keep_only=regions)

    kept = inside(regions[0], ds.Rows, ds.Columns) | inside(regions[1], ds.Rows, ds.Columns)
    _assert_blanked(before, frames_of(ds), ~kept[None], 0)


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
    assert _rejection(ct, syntax, [Region(0, 0, 2.5, 10)]) == "invalid_region"
    assert _rejection(ct, syntax, [Region(0, 0, 5, 5, frames=(2,))]) == "region_outside_image"
    assert _rejection(ct, "1.2.3.4", [Region(0, 0, 5, 5)]) == "unsupported_transfer_syntax"
    ict = pydicom_file("examples_rgb_color.dcm")
    ict.PhotometricInterpretation = "YBR_ICT"
    assert _rejection(ict, transfer_syntax(ict),
                      [Region(0, 0, 5, 5)]) == "unsupported_photometric_interpretation"
    compressed = pydicom_file("MR_small_RLE.dcm")
    assert _rejection(compressed, ExplicitVRLittleEndian,
                      [Region(0, 0, 5, 5)]) == "pixel_data_encoding"
    undecodable = pydicom_file("JPEG-lossy.dcm")  # needs GDCM, which is not installed
    assert _rejection(undecodable, transfer_syntax(undecodable),
                      [Region(0, 0, 5, 5)]) == "decode_failed"
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
    before = frames_of(ds)
    region = Region(3, 5, 17, 9)

    blank_regions(ds, transfer_syntax(ds), [region])

    _assert_blanked(before, frames_of(ds), inside(region, ds.Rows, ds.Columns)[None], 0)


def _frame_mask(before: np.ndarray, region: Region) -> np.ndarray:
    """The region over the frames it names, shaped like `before`'s (frames, rows, columns)."""
    mask = np.zeros(before.shape[:3], dtype=bool)
    frames = region.frames or range(1, before.shape[0] + 1)
    for frame in frames:
        mask[frame - 1] = inside(region, before.shape[1], before.shape[2])
    return mask


@pytest.mark.parametrize(("name", "frames"), [
    ("MR_small_RLE.dcm", None), ("SC_rgb_rle_2frame.dcm", (2,)),
    ("SC_rgb_rle_16bit_2frame.dcm", None), ("SC_rgb_rle_16bit.dcm", None),
    ("MR_small_jpeg_ls_lossless.dcm", None), ("MR_small_jp2klossless.dcm", None),
    ("J2K_pixelrep_mismatch.dcm", None), ("GDCMJ2K_TextGBR.dcm", None)])
def test_lossless_compressed_is_re_encoded_in_its_own_syntax(name: str, frames):
    ds = pydicom_file(name)
    syntax = transfer_syntax(ds)
    box = draw_text(ds, "ID 4711", 1, 1, size=min(ds.Rows, ds.Columns) // 4, frames=frames)
    region = Region(box.left, box.top, box.width, box.height, frames)
    before = frames_of(ds)
    original = list(generate_frames(ds.PixelData, number_of_frames=before.shape[0]))

    cleaned = blank_regions(ds, syntax, [region])

    assert cleaned.transfer_syntax == syntax and ds["PixelData"].is_undefined_length
    assert cleaned.frames == len(frames or before[:, :1])
    after = frames_of(ds)  # the re-encoded frames decode to exactly the blanked array
    blank = [0] * ds.SamplesPerPixel if ds.PixelRepresentation == 0 else \
        -(1 << (ds.BitsStored - 1))
    _assert_blanked(before, after, _frame_mask(before, region), blank)
    now = list(generate_frames(ds.PixelData, number_of_frames=before.shape[0]))
    for number in range(1, before.shape[0] + 1):  # frames no region touches keep their bytes
        assert (now[number - 1] == original[number - 1]) == (frames is not None and
                                                             number not in frames)


def test_jpeg_2000_keeps_its_reversible_colour_transform():
    ds = pydicom_file("examples_jpeg2k.dcm")  # YBR_RCT
    before = frames_of(ds)
    region = Region(100, 50, 200, 40)

    blank_regions(ds, transfer_syntax(ds), [region])

    assert ds.PhotometricInterpretation == "YBR_RCT"
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    cod = codestream.index(b"\xff\x52")  # COD marker: Lcod, Scod, order, layers, then MCT
    assert codestream[cod + 8] == 1
    _assert_blanked(before, frames_of(ds), _frame_mask(before, region), [0, 0, 0])


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle_32bit_2frame.dcm",
                                  "rtdose_rle.dcm"])
def test_lossless_without_encoder_becomes_explicit_little_endian(name: str):
    """JPEG Lossless has no encoder; pydicom's RLE encoder refuses 32-bit data."""
    ds = pydicom_file(name)
    before = frames_of(ds)
    region = Region(1, 2, 5, 4)

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert cleaned.transfer_syntax == ExplicitVRLittleEndian
    assert "LossyImageCompression" not in ds and not ds["PixelData"].is_undefined_length
    _assert_blanked(before, frames_of(ds), _frame_mask(before, region), [0] * ds.SamplesPerPixel)


@pytest.mark.parametrize("name", [
    "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "examples_ybr_color.dcm", "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_gdcm_KY.dcm", "693_J2KI.dcm"])
def test_lossy_sources_come_out_uncompressed_and_marked_lossy(name: str):
    ds = pydicom_file(name)
    before = frames_of(ds, raw=False)  # as viewers show it: YCbCr converted to RGB
    region = Region(5, 6, 40, 20, frames=(2, 30) if ds.get("NumberOfFrames", 1) > 1 else None)

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert cleaned.transfer_syntax == ExplicitVRLittleEndian
    assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod
    color = ds.SamplesPerPixel == 3
    assert ds.PhotometricInterpretation == ("RGB" if color else "MONOCHROME2")
    blank = [0, 0, 0] if color else -(1 << (ds.BitsStored - 1)) if ds.PixelRepresentation else 0
    _assert_blanked(before, frames_of(ds), _frame_mask(before, region), blank)


@pytest.mark.parametrize("origin", [(1, 1), (21, -9)])
def test_kept_overlay_planes_are_blanked_in_the_same_regions(origin: tuple[int, int]):
    ds = pydicom_file("examples_overlay.dcm")  # one 300x484 plane in (6000,3000)
    ds[0x60000050].value = list(origin)  # the plane's (1,1) lies on image (row, column)
    plane = ds.overlay_array(0x6000).copy()
    plane[:, :] = 1  # every bit set: any bit blanked outside the region would show
    ds[0x60003000].value = np.packbits(plane.ravel(), bitorder="little").tobytes()
    region = Region(100, 50, 40, 30)

    blank_regions(ds, transfer_syntax(ds), [region])

    after = ds.overlay_array(0x6000)
    expected = np.ones_like(plane)
    row, column = origin
    expected[50 - row + 1:80 - row + 1, 100 - column + 1:140 - column + 1] = 0
    assert (after == expected).all()


def test_overlay_outside_keep_only_is_blanked():
    ds = pydicom_file("examples_overlay.dcm")
    plane = ds.overlay_array(0x6000)
    kept = Region(0, 0, 484, 150)

    blank_regions(ds, transfer_syntax(ds), [], keep_only=[kept])

    after = ds.overlay_array(0x6000)
    assert (after[:150] == plane[:150]).all() and not after[150:].any()


def test_a_kept_icon_image_is_blanked_whole():
    ds = pydicom_file("CT_small.dcm")
    icon = Dataset()
    icon.Rows = icon.Columns = 4
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated = icon.BitsStored = 8
    icon.HighBit, icon.PixelRepresentation = 7, 0
    icon.PixelData = bytes(range(1, 17))
    ds.IconImageSequence = Sequence([icon])

    blank_regions(ds, transfer_syntax(ds), [Region(0, 0, 5, 5)])

    assert ds.IconImageSequence[0].PixelData == bytes(16)


@pytest.mark.parametrize(("name", "declared", "marked"), [
    ("SC_rgb_jpeg_dcmtk.dcm", "00", "01"),  # JPEG Baseline is lossy whatever it says
    ("SC_rgb_gdcm_KY.dcm", "00", "00"),     # JPEG 2000 may be reversible: trusted
    ("SC_rgb_gdcm_KY.dcm", None, "01")])
def test_lossy_marking_trusts_only_what_can_be_true(name: str, declared, marked: str):
    ds = pydicom_file(name)
    if declared is None:
        del ds.LossyImageCompression
    else:
        ds.LossyImageCompression = declared

    blank_regions(ds, transfer_syntax(ds), [Region(0, 0, 5, 5)])

    assert ds.LossyImageCompression == marked


def test_extended_offset_table_is_read_and_replaced():
    ds = pydicom_file("SC_rgb_rle_2frame.dcm")
    frames = list(generate_frames(ds.PixelData, number_of_frames=2))
    ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = \
        encapsulate_extended(frames)
    before = frames_of(ds)
    region = Region(0, 90, 100, 10, frames=(2,))

    blank_regions(ds, transfer_syntax(ds), [region])

    assert "ExtendedOffsetTable" not in ds and "ExtendedOffsetTableLengths" not in ds
    _assert_blanked(before, frames_of(ds), _frame_mask(before, region), [0, 0, 0])


def test_keep_only_covering_everything_leaves_a_lossy_instance_as_it_was():
    ds = pydicom_file("SC_rgb_jpeg_dcmtk.dcm")
    syntax = transfer_syntax(ds)

    cleaned = blank_regions(ds, syntax, [], keep_only=[Region(0, 0, ds.Columns, ds.Rows)])

    assert (cleaned.transfer_syntax, cleaned.frames) == (syntax, 0)
    assert ds == pydicom_file("SC_rgb_jpeg_dcmtk.dcm")


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_monochrome1_compressed_blank_is_its_largest_value(name: str):
    ds = pydicom_file(name)  # signed 16 bits
    ds.PhotometricInterpretation = "MONOCHROME1"
    before = frames_of(ds)
    region = Region(30, 30, 40, 40)  # reaches past the 64x64 image: clipped

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert cleaned.transfer_syntax == transfer_syntax(ds)
    _assert_blanked(before, frames_of(ds), _frame_mask(before, Region(30, 30, 34, 34)), 32767)

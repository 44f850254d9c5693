"""deid.pixels on real images: ../shared/corpus ultrasound, secondary capture and other
files (skipped when the corpus is not beside the checkout), text drawn in, cleaned, checked by
pixel comparison, by Tesseract where installed, and by dciodvfy where installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian

from deid.pixels import Region, blank_regions, find_text, ocr_available, ultrasound_regions
from deid.pixels.encapsulated import LOSSY_METHOD
from tests.pixel_images import draw_text, frames_of, inside, pydicom_file, transfer_syntax

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(),
                                  reason="../shared/corpus is not beside the checkout")
needs_ocr = pytest.mark.skipif(not ocr_available(), reason="Tesseract OCR is not installed "
                               "(Debian tesseract-ocr and the pytesseract package)")
needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                    reason="dicom3tools' dciodvfy is not installed")

# file, text drawn (None: the syntax cannot be written by the tests), frames, what it shows
CASES = [
    ("dcm4che__US-PAL-8-10x-echo", "PATIENT 4711", (2, 7)),      # RLE, palette, 10 frames
    ("dcm4che__jpeg-ls-Palette.dcm", "PATIENT 4711", (1, 10)),   # JPEG-LS lossless, palette
    ("dcm4che__YBR_422.dcm", "PATIENT 4711", None),              # native YBR_FULL_422
    ("dwv__leadtools-flowers-8-mono2-rle.dcm", "PATIENT 4711", None),  # OT, RLE
    ("dcm4che__ovly_p01.dcm", "PATIENT 4711", None),             # OT, overlays in the pixels
    ("wg04__NM1_JLSL", "PATIENT 4711", None),                    # JPEG-LS 16 bits
    ("dcm4che__US-RGB-8-epicard", None, None),                   # native big endian RGB
    ("dicomparser__IM00001.fragmented_no_bot_jpeg_baseline.50.dcm", None, (3,)),  # lossy
    ("orthanc__LenaTwiceWithFragments.dcm", None, (2,)),         # lossy, fragmented frames
    ("pydicomdata__HTJ2K_08_RGB.dcm", None, None),               # HTJ2K, possibly lossy
    ("pydicomdata__HTJ2KLossless_08_RGB.dcm", None, None),       # HTJ2K lossless: no encoder
    ("wg04__XA1_JPLL", None, None),                              # JPEG Lossless: no encoder
]
TEXT_AT = (40, 40)
TEXT_ELSEWHERE = {"dcm4che__ovly_p01.dcm": (40, 420)}  # away from the text already burned in
TEXT_SIZE = 36


def _corpus(name: str) -> Dataset:
    return dcmread(CORPUS / name)


def _prepare(name: str, text: str | None, frames) -> tuple[Dataset, Region]:
    ds = _corpus(name)
    if text is None:
        return ds, Region(*TEXT_AT, 200, 40, frames)
    box = draw_text(ds, text, *TEXT_ELSEWHERE.get(name, TEXT_AT), size=TEXT_SIZE, frames=frames)
    return ds, Region(box.left, box.top, box.width, box.height, frames)


def _mask(shape: tuple[int, ...], region: Region) -> np.ndarray:
    mask = np.zeros(shape[:3], dtype=bool)
    for frame in region.frames or range(1, shape[0] + 1):
        mask[frame - 1] = inside(region, shape[1], shape[2])
    return mask


@needs_corpus
@pytest.mark.parametrize(("name", "text", "frames"), CASES)
def test_corpus_images_lose_their_text_and_keep_every_other_pixel(name: str, text, frames):
    ds, region = _prepare(name, text, frames)
    syntax = transfer_syntax(ds)
    lossy = syntax in LOSSY_METHOD
    before = frames_of(ds, raw=not lossy)
    if ds.PhotometricInterpretation == "YBR_FULL_422" and not lossy:
        before = frames_of(ds)  # expanded, as the cleaned data is

    cleaned = blank_regions(ds, syntax, [region])

    ds.file_meta.TransferSyntaxUID = cleaned.transfer_syntax
    after = frames_of(ds, raw=not lossy)
    mask = _mask(before.shape, region)
    assert (after[~mask] == before[~mask]).all()
    blanked = after[mask].reshape(-1, ds.SamplesPerPixel)
    assert (blanked == blanked[0]).all() and not (before[mask] == after[mask]).all()
    assert cleaned.frames == mask.any(axis=(1, 2)).sum()
    if lossy:
        assert cleaned.transfer_syntax == ExplicitVRLittleEndian
        assert ds.LossyImageCompression == "01"


@needs_corpus
def test_corpus_untouched_frames_keep_their_bytes():
    ds, region = _prepare("dcm4che__jpeg-ls-Palette.dcm", "PATIENT 4711", (4,))
    original = list(generate_frames(ds.PixelData, number_of_frames=10))

    blank_regions(ds, transfer_syntax(ds), [region])

    now = list(generate_frames(ds.PixelData, number_of_frames=10))
    assert [a == b for a, b in zip(original, now, strict=True)] == [True] * 3 + [False] + \
        [True] * 6


@needs_corpus
def test_corpus_ultrasound_keep_only_its_regions():
    ds = _corpus("dicomparser__IM00001.fragmented_no_bot_jpeg_baseline.50.dcm")
    regions = ultrasound_regions(ds)
    before = frames_of(ds, raw=False)

    blank_regions(ds, transfer_syntax(ds), [], keep_only=regions)

    kept = np.zeros(before.shape[1:3], dtype=bool)
    for region in regions:
        kept |= inside(region, *before.shape[1:3])
    after = frames_of(ds, raw=False)
    assert (after[:, kept] == before[:, kept]).all() and not after[:, ~kept].any()


def _read_in(region: Region, boxes: list[Region]) -> bool:
    """Whether a word Tesseract found lies in the region (its box's centre does: a word next
    to the region may reach into it by its margin)."""
    return any(region.left <= box.left + box.width // 2 < region.left + region.width and
               region.top <= box.top + box.height // 2 < region.top + region.height
               for box in boxes)


@needs_ocr
@needs_corpus
@pytest.mark.parametrize("name", ["dcm4che__YBR_422.dcm",
                                  "dwv__leadtools-flowers-8-mono2-rle.dcm",
                                  "dcm4che__ovly_p01.dcm"])
def test_ocr_reads_the_drawn_text_before_and_not_after(name: str):
    ds, region = _prepare(name, "PATIENT 4711", None)
    assert _read_in(region, find_text(ds, transfer_syntax(ds)))

    cleaned = blank_regions(ds, transfer_syntax(ds), [region])

    assert not _read_in(region, find_text(ds, cleaned.transfer_syntax))


@needs_ocr
@pytest.mark.parametrize(("name", "text"), [("CT_small.dcm", "DOE JANE"),
                                            ("MR_small_RLE.dcm", "DOE 42")])
def test_ocr_boxes_redact_the_text_they_find(name: str, text: str):
    ds = pydicom_file(name)
    draw_text(ds, text, 4, 4, size=min(ds.Rows, ds.Columns) // 5)
    found = find_text(ds, transfer_syntax(ds))
    assert found and all(box.frames == (1,) for box in found)

    cleaned = blank_regions(ds, transfer_syntax(ds), found)

    assert find_text(ds, cleaned.transfer_syntax) == []


def _errors(path: Path) -> set[str]:
    """dciodvfy's error lines, without the values they quote."""
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {re.sub(r"<[^>]*>|\[[^\]]*\]|\d+ dec", "", line) for line in lines
            if line.startswith("Error")}


@needs_dciodvfy
@needs_corpus
@pytest.mark.parametrize("name", ["dcm4che__US-PAL-8-10x-echo", "dcm4che__YBR_422.dcm",
                                  "dicomparser__IM00001.fragmented_no_bot_jpeg_baseline.50.dcm",
                                  "wg04__NM1_JLSL", "dcm4che__ovly_p01.dcm"])
def test_cleaned_outputs_are_no_less_valid_dicom(name: str, tmp_path: Path):
    ds = _corpus(name)
    cleaned = blank_regions(ds, transfer_syntax(ds), [Region(10, 10, 100, 50)])
    ds.file_meta.TransferSyntaxUID = cleaned.transfer_syntax
    output = tmp_path / "cleaned.dcm"
    ds.save_as(output, enforce_file_format=True)

    assert _errors(output) <= _errors(CORPUS / name)


@needs_ocr
def test_ocr_finds_nothing_in_a_frame_too_small_for_text():
    ds = pydicom_file("SC_rgb_small_odd_big_endian.dcm")  # 3x3 pixels
    assert find_text(ds, transfer_syntax(ds)) == []

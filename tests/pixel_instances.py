"""Small instances with pixels, and a site profile with pixel rules, for the tests of cleaning
burned-in annotation through the engine, explain and the pipeline."""

from __future__ import annotations

from dicom_factory import base_dataset
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

GREY = 200  # every pixel of a test image; blanking writes 0 (MONOCHROME2)
PROFILE = """\
name: site
extends: [clean-pixel-data]
pixels:
  ultrasound_regions: {ultrasound}
  ocr: {ocr}
  rules:
  - name: acme-top-bar
    match: {{Manufacturer: ACME, ManufacturerModelName: {{pattern: '^Sono'}}}}
    blank: [[0, 0, 64, 8]]
  - name: acme-any
    match: {{Manufacturer: ACME}}
    blank: [[0, 40, 64, 8]]
  - name: second-frame
    match: {{Manufacturer: FRAMES}}
    blank: [{{region: [0, 0, 16, 16], frames: [2]}}]
rules:
- {{attribute: Manufacturer, action: remove}}
- {{attribute: ManufacturerModelName, action: remove}}
"""


def image(modality: str = "US", manufacturer: str | None = "ACME", model: str | None = None,
          frames: int = 1, burned: str | None = None) -> Dataset:
    """A 48 x 64 MONOCHROME2 8-bit instance, every pixel GREY."""
    sop_class = {"US": UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage,
                 "SC": SecondaryCaptureImageStorage}.get(modality, CTImageStorage)
    ds = base_dataset(sop_class, modality)
    if manufacturer:
        ds.Manufacturer = manufacturer
    if model:
        ds.ManufacturerModelName = model
    if burned:
        ds.BurnedInAnnotation = burned
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 48, 64, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes([GREY]) * (48 * 64 * frames)
    return ds


def us_regions(*boxes: tuple[int, int, int, int]) -> Sequence:
    """Ultrasound regions from inclusive (min x, min y, max x, max y) bounds."""
    items = []
    for min_x, min_y, max_x, max_y in boxes:
        item = Dataset()
        item.RegionLocationMinX0, item.RegionLocationMinY0 = min_x, min_y
        item.RegionLocationMaxX1, item.RegionLocationMaxY1 = max_x, max_y
        items.append(item)
    return Sequence(items)

"""Pixel cleaning for the Clean Pixel Data Option (PS3.15 E.3.1): blank rectangles of Pixel
Data in any transfer syntax pydicom can decode, keep only ultrasound regions, find text with
Tesseract. An engine-layer package: it knows nothing of profiles and never imports Beam."""

from deid.pixels.blank import blank_regions
from deid.pixels.model import Cleaned, PixelError, Region
from deid.pixels.ocr import find_text, ocr_available
from deid.pixels.regions import ultrasound_regions

__all__ = ["Cleaned", "PixelError", "Region", "blank_regions", "find_text", "ocr_available",
           "ultrasound_regions"]

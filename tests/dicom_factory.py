"""Small DICOM datasets built in code, for tests that need exact control of the input."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from deid.keys import SecretKey

KEY = SecretKey(b"test-key-0123456789abcdef", "tests")
OTHER_KEY = SecretKey(b"another-key-0123456789abcdef", "tests")
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1.2"
SOP_UID = "1.2.826.0.1.3680043.8.498.1.2.3"

# A valid, identifiable-looking value for each VR.
SAMPLE_VALUES: dict[str, object] = {
    "AE": "SCANNER01", "AS": "045Y", "CS": "VALUE", "DA": "20200315", "DS": "12.5",
    "DT": "20200315101112", "IS": "42", "LO": "Long Value", "LT": "Long text", "PN": "Doe^Jane",
    "SH": "Short", "ST": "Short text", "TM": "101112", "UC": "Unlimited", "UI": "1.2.3.4.5.6",
    "UR": "http://example.org/x", "UT": "Unlimited text", "FL": 1.5, "FD": 2.5, "SL": -3,
    "SS": -4, "SV": 5, "UL": 6, "US": 7, "UV": 8, "AT": 0x00100010, "OB": b"\x01\x02",
    "OD": b"\x00" * 8, "OF": b"\x00" * 4, "OL": b"\x00" * 4, "OV": b"\x00" * 8,
    "OW": b"\x01\x02", "UN": b"\x01\x02",
}


def base_dataset(sop_class: str = CTImageStorage, modality: str = "CT") -> Dataset:
    """An instance with the attributes every output needs and a few identifying ones."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.Modality = modality
    ds.PatientID = "PID-0001"
    ds.PatientName = "Doe^Jane"
    return ds


def code_item(value: str = "T-D1100", scheme: str = "SRT", meaning: str = "Head") -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def sequence_of(*items: Dataset) -> Sequence:
    return Sequence(list(items))


def to_bytes(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Encode as a DICOM file (explicit VR little endian unless told otherwise: pydicom
    swaps bytes and deflates as the transfer syntax says)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()

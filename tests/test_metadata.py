"""metadata.parquet: every written instance's attributes, one row each, queried with DuckDB as
the README shows; a stable schema; and nothing in it that the DICOM outputs do not hold."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pydicom
import pytest
from dicom_factory import base_dataset, code_item, sequence_of, to_bytes
from pydicom.dataset import Dataset

from deid.beam import metadata
from pipelines import deidentify
from pipelines.deidentify import sample_files

SECRET = "metadata-tests-0123456789abcdef"  # a test key, not a secret
SAMPLE = sample_files()
TRUNCATED = next(p for p in SAMPLE if Path(p).name == "MR_truncated.dcm")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    """pydicom's test files through basic (99 written), and a run where nothing is written."""
    root = tmp_path_factory.mktemp("metadata")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEID_SECRET", SECRET)
        for name, inputs in (("out", ["--sample"]), ("none", ["--input", TRUNCATED])):
            report = deidentify.run(deidentify.plan(
                [*inputs, "--output", str(root / name), "--profile", "basic"]))
            assert report.consistent
    return root / "out"


def query(sql: str, out: Path) -> list[tuple]:
    """DuckDB over the run's files; fetchall (duckdb 2.0 changed what fetchone returns)."""
    sql = sql.replace("metadata.parquet", f"'{out / 'metadata.parquet'}'")
    return duckdb.sql(sql.replace("manifest.parquet", f"'{out / 'manifest.parquet'}'")).fetchall()


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


# --- the table as SQL sees it ------------------------------------------------------------------

def test_one_row_per_written_instance(sample_run):
    rows = manifest(sample_run)
    assert len(rows) == 99
    assert query("SELECT count(*), count(DISTINCT SOPInstanceUID) FROM metadata.parquet",
                 sample_run) == [(99, 99)]
    assert {uid for (uid,) in query("SELECT SOPInstanceUID FROM metadata.parquet",
                                    sample_run)} == {r["sop_instance_uid"] for r in rows}


def test_counts_by_modality_and_series(sample_run):
    rows = manifest(sample_run)
    by_modality = query("SELECT Modality, count(*) FROM metadata.parquet GROUP BY Modality",
                        sample_run)
    assert Counter({m or "": n for m, n in by_modality}) == \
        Counter(r["modality"] for r in rows)
    assert dict(by_modality)["CT"] > 10
    by_series = query("SELECT StudyInstanceUID, SeriesInstanceUID, count(*) "
                      "FROM metadata.parquet GROUP BY ALL", sample_run)
    assert Counter({(st, se): n for st, se, n in by_series}) == \
        Counter((r["study_instance_uid"], r["series_instance_uid"]) for r in rows)
    assert max(n for *_, n in by_series) > 1  # a series of several instances


def test_joins_the_manifest_and_reads_lists_and_sequences(sample_run):
    """The README's queries: a join with the manifest, a multi-valued attribute, and a
    sequence through DuckDB's JSON functions."""
    joined = query("SELECT m.Modality, f.modality, f.output_path FROM metadata.parquet m "
                   "JOIN manifest.parquet f ON m.SOPInstanceUID = f.sop_instance_uid",
                   sample_run)
    assert len(joined) == 99 and all((a or "") == b for a, b, _ in joined)
    positions = query("SELECT ImagePositionPatient[3] FROM metadata.parquet "
                      "WHERE Modality = 'CT' AND ImagePositionPatient IS NOT NULL", sample_run)
    assert positions and all(isinstance(z, float) for (z,) in positions)
    codes = query("SELECT DISTINCT json_extract_string(DeidentificationMethodCodeSequence, "
                  "'$[0].\"00080100\".Value[0]') FROM metadata.parquet", sample_run)
    assert codes == [("113100",)]  # Basic Application Confidentiality Profile


def test_the_schema_is_the_same_whatever_the_run_held(sample_run):
    written = pq.read_schema(sample_run / "metadata.parquet")
    empty = pq.read_table(sample_run.parent / "none" / "metadata.parquet")
    assert empty.num_rows == 0
    assert written == empty.schema == metadata.schema()
    names = written.names
    assert len(names) > 5000 and names[-1] == metadata.OTHER
    assert {"Modality", "SeriesInstanceUID", "PatientName", "ImageType",
            "ReferencedImageSequence"} <= set(names)
    assert not {"PixelData", "OverlayData", "TransferSyntaxUID", "Item"} & set(names)


# --- nothing the outputs do not hold -------------------------------------------------------

def _strings(model) -> list[str]:
    """The text values of a DICOM JSON model (AT values are tags, not text in the file)."""
    found = []
    if isinstance(model, dict):
        if model.get("vr") == "AT":
            return found
        for key, value in model.items():
            if key in ("Value", "Alphabetic", "Ideographic", "Phonetic") or \
                    isinstance(value, (dict, list)):
                found += _strings(value)
    elif isinstance(model, list):
        for value in model:
            found += [value] if isinstance(value, str) else _strings(value)
    elif isinstance(model, str):
        found.append(model)
    return found


def _same(cell, value) -> bool:
    if type(value).__name__ == "BaseTag":  # AT: GGGGEEEE, as the JSON model writes it
        return cell == f"{int(value):08X}"
    if isinstance(cell, float):
        return math.isclose(cell, float(value), rel_tol=1e-9)
    if isinstance(cell, int):
        return cell == int(value)
    return cell == (str(value) if value is not None else "")


def test_every_value_is_in_the_written_instance(sample_run):
    """Each non-null cell is the attribute of the output file the manifest names (read
    independently with pydicom); each text inside a sequence or OtherAttributes is in that
    file's bytes. So the table holds nothing the de-identified outputs do not."""
    paths = {r["sop_instance_uid"]: sample_run / r["output_path"] for r in manifest(sample_run)}
    table = pq.read_table(sample_run / "metadata.parquet")
    kinds = {keyword: kind for keyword, kind, _ in metadata.columns().values()}
    checked = Counter()
    for row in table.to_pylist():
        path = paths[row["SOPInstanceUID"]]
        ds, raw = pydicom.dcmread(path, stop_before_pixels=True), path.read_bytes()
        for keyword, cell in row.items():
            if cell is None:
                continue
            if keyword == metadata.OTHER or kinds[keyword] == "json":
                for text in _strings(json.loads(cell)):
                    assert text.encode() in raw, (path.name, keyword)
                    checked["text in a sequence"] += 1
                continue
            assert keyword in ds, (path.name, keyword)
            value = ds[keyword].value
            if isinstance(cell, list):
                values = list(value) if isinstance(value, (list, tuple)) or \
                    type(value).__name__ == "MultiValue" else \
                    [] if value in ("", None) else [value]
                assert len(cell) == len(values) and all(map(_same, cell, values)), keyword
            else:
                assert _same(cell, value), (path.name, keyword)
            checked["cell"] += 1
    assert checked["cell"] > 2000 and checked["text in a sequence"] > 100


def test_no_original_identifier_reaches_the_table(sample_run):
    """The originals' patient names, IDs and instance UIDs, which basic replaces, are in no
    cell, sequence or OtherAttributes (a control: the manifest's new UIDs are)."""
    originals = set()
    for path in SAMPLE:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            continue
        for keyword in ("PatientName", "PatientID", "SOPInstanceUID", "StudyInstanceUID"):
            value = str(ds.get(keyword, "") or "")
            if len(value) >= 6 and value != "ANONYMIZED":
                originals.add(value)
    assert len(originals) > 50
    # decoded: Parquet compresses its pages, so the file's bytes could hide a value
    text = json.dumps(pq.read_table(sample_run / "metadata.parquet").to_pylist(),
                      ensure_ascii=False)
    found = [value for value in originals if value in text]
    assert not found, f"{len(found)} original identifiers in metadata.parquet"
    assert manifest(sample_run)[0]["sop_instance_uid"] in text


# --- one row, from instances built here -----------------------------------------------------

def _row(ds: Dataset) -> dict:
    return metadata.row_from(to_bytes(ds))


def test_a_row_in_the_dicom_json_model_without_bulk_data():
    ds = base_dataset()
    ds.PatientName = "Doe^Jane=Ideo^Graphic"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = ["0.5", "0.25"]
    ds.Rows, ds.InstanceNumber = 512, "7"
    ds.StudyDescription = ""
    ds.FrameIncrementPointer = 0x00181063
    item = code_item()
    item.add_new(0x00091010, "OB", b"\x00\x01")  # bulk data in an item: left out
    ds.AnatomicRegionSequence = sequence_of(item)
    ds.add_new(0x00091001, "OB", b"\x01\x02")
    row = _row(ds)
    assert row["PatientName"] == "Doe^Jane=Ideo^Graphic"
    assert row["ImageType"] == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert row["PixelSpacing"] == [0.5, 0.25]
    assert (row["Rows"], row["InstanceNumber"]) == (512, 7)
    assert row["StudyDescription"] == ""  # present and empty is not absent (null)
    assert row["FrameIncrementPointer"] == ["00181063"]
    assert json.loads(row["AnatomicRegionSequence"]) == [{
        "00080100": {"vr": "SH", "Value": ["T-D1100"]},
        "00080102": {"vr": "SH", "Value": ["SRT"]},
        "00080104": {"vr": "LO", "Value": ["Head"]}}]
    assert metadata.OTHER not in row  # the private OB is bulk data
    assert "BurnedInAnnotation" not in row


def test_what_has_no_column_goes_to_other_attributes():
    ds = base_dataset()
    ds.add_new(0x00091010, "LO", "ACME 1.0")  # a private creator
    ds.add_new(0x00091011, "LO", "private text")
    ds.add_new(0x60000010, "US", 256)  # Overlay Rows, a repeating group
    ds.add_new(0x00200013, "IS", ["1", "2"])  # Instance Number (VM 1) with two values
    ds.add_new(0x00280010, "US", 16)
    row = _row(ds)
    other = json.loads(row[metadata.OTHER])
    assert other["00091010"] == {"vr": "LO", "Value": ["ACME 1.0"]}
    assert other["00091011"] == {"vr": "LO", "Value": ["private text"]}
    assert other["60000010"] == {"vr": "US", "Value": [256]}
    assert other["00200013"] == {"vr": "IS", "Value": [1, 2]}
    assert "InstanceNumber" not in row and row["Rows"] == 16
    table = metadata.table_of([row, {}])
    assert table.schema == metadata.schema() and table.num_rows == 2
    assert table.column("Rows").to_pylist() == [16, None]

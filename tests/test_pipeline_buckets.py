"""The pipeline from bucket to bucket: S3 on a moto server, GCS on gcp-storage-emulator.

Both servers start inside the test session on free ports (tests/conftest.py). Each run is
compared with a local, in-memory run of the same files and key: the bytes must be the same,
whether the bucket run streamed every input (S3) or only the large one (GCS)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest
from conftest import s3_client

from benchmarks.huge import synthesize
from deid.beam.paths import STAGING
from pipelines import deidentify

SECRET = "bucket-tests-0123456789abcdef"
NAMES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "rtplan.dcm", "README.txt")


def inputs(folder: Path) -> list[Path]:
    """A few of pydicom's test files (one a second copy of an instance, one not DICOM), a
    truncated file and an encapsulated instance of 2 MiB."""
    folder.mkdir()
    by_name = {Path(p).name: p for p in deidentify.sample_files()}
    for name in NAMES:
        if name in by_name:
            shutil.copy(by_name[name], folder / name)
    (folder / "sub").mkdir()
    (folder / "sub" / "truncated.dcm").write_bytes(Path(by_name["CT_small.dcm"]).read_bytes()
                                                   [:300])
    synthesize(folder / "large.dcm", 2 << 20, encapsulated=True)
    return sorted(p for p in folder.rglob("*") if p.is_file())


def local_reference(files_dir: Path, tmp_path: Path) -> dict[str, bytes]:
    """The same inputs, same key, run locally: relative output path -> bytes."""
    report = deidentify.run(deidentify.plan([
        "--input", str(files_dir), "--output", str(tmp_path / "local"), "--profile", "basic"]))
    assert report.consistent
    return {str(p.relative_to(tmp_path / "local")): p.read_bytes()
            for p in (tmp_path / "local").rglob("*.dcm")}


def check_bucket_run(report, objects: dict[str, bytes], prefix: str, count: int,
                     reference: dict[str, bytes]) -> None:
    """objects: every object in the bucket by key."""
    assert report.consistent, report.counts
    assert report.read == count
    outputs = {key[len(prefix) + len("out/"):]: data for key, data in objects.items()
               if key.startswith(prefix + "out/") and key.endswith(".dcm")}
    assert outputs == reference  # byte-identical to the local run with the same key
    for relative, data in outputs.items():
        ds = pydicom.dcmread(io.BytesIO(data))
        assert relative == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    manifest = [json.loads(line) for line in
                objects[prefix + "out/manifest.jsonl"].decode().splitlines()]
    assert len(manifest) == len(outputs) == report.written
    for row in manifest:
        key = prefix + "out/" + row["output_path"]
        assert row["sha256"] == hashlib.sha256(objects[key]).hexdigest()
    assert prefix + "out/manifest.parquet" in objects
    metadata = pq.read_table(io.BytesIO(objects[prefix + "out/metadata.parquet"]))
    assert sorted(metadata.column("SOPInstanceUID").to_pylist()) == \
        sorted(row["sop_instance_uid"] for row in manifest)
    records = [json.loads(line) for line in
               objects[prefix + "quarantine/quarantine.jsonl"].decode().splitlines()]
    assert len(records) == report.quarantined > 0
    assert {r["reason"] for r in records} >= {"duplicate_instance"}
    assert all(r["input"].startswith(("s3://", "gs://")) for r in records)
    uid_rows = objects[prefix + "linkage/uid_mapping.csv"].decode().splitlines()
    assert uid_rows[0] == "id_old,id_new" and len(uid_rows) > len(outputs)
    assert not [key for key in objects if STAGING in key]
    assert not [key for key in objects if key.startswith(prefix + "out/") and "linkage" in key]


def test_s3_to_s3_in_worker_processes(moto_s3, tmp_path, monkeypatch):
    """Multi-process workers need the S3 settings: the local runner forwards the options."""
    monkeypatch.delenv("DEID_SECRET", raising=False)
    files = inputs(tmp_path / "in")
    s3 = s3_client(moto_s3)
    bucket = "deid-pipeline-test"
    s3.create_bucket(Bucket=bucket)
    for path in files:
        s3.put_object(Bucket=bucket, Key="run/in/" + str(path.relative_to(tmp_path / "in")),
                      Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key="keys/secret", Body=SECRET.encode())
    monkeypatch.setenv("DEID_SECRET", SECRET)
    reference = local_reference(tmp_path / "in", tmp_path)
    monkeypatch.delenv("DEID_SECRET")  # the workers read the key from the bucket

    base = f"s3://{bucket}/run/"
    report = deidentify.run(deidentify.plan([
        "--input", base + "in", "--output", base + "out",
        "--quarantine_output", base + "quarantine", "--linkage_output", base + "linkage",
        "--secret_file", f"s3://{bucket}/keys/secret", "--profile", "basic",
        "--s3_endpoint_url", moto_s3["endpoint"], "--s3_access_key_id", moto_s3["access_key"],
        "--s3_secret_access_key", moto_s3["secret_key"], "--s3_region_name", moto_s3["region"],
        "--stream_threshold_mb", "0",
        # Beam's own FnApiRunner would not pass the S3 settings to its worker processes
        "--runner", "FnApiRunner", "--direct_running_mode", "multi_processing",
        "--direct_num_workers", "2"]))

    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            objects[entry["Key"]] = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    check_bucket_run(report, objects, "run/", len(files), reference)


def test_gcs_to_gcs(gcs_env, tmp_path, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("DEID_SECRET", SECRET)
    files = inputs(tmp_path / "in")
    client = storage.Client(project=gcs_env["project"], credentials=AnonymousCredentials())
    bucket = client.create_bucket("deid-pipeline-test")
    for path in files:
        bucket.blob("run/in/" + str(path.relative_to(tmp_path / "in"))).upload_from_string(
            path.read_bytes())
    reference = local_reference(tmp_path / "in", tmp_path)

    base = "gs://deid-pipeline-test/run/"
    report = deidentify.run(deidentify.plan([
        "--input", base + "in/", "--output", base + "out",
        "--quarantine_output", base + "quarantine", "--linkage_output", base + "linkage",
        "--profile", "basic", "--project", gcs_env["project"], "--stream_threshold_mb", "1"]))

    objects = {blob.name: blob.download_as_bytes() for blob in client.list_blobs(bucket)}
    check_bucket_run(report, objects, "run/", len(files), reference)


@pytest.mark.parametrize("output", ["gs://deid-pipeline-test", "gs://deid-pipeline-test/"])
def test_a_bucket_root_output_needs_a_quarantine_folder(output, gcs_env, capsys, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    code = deidentify.main(["--input", str(tmp_path), "--output", output, "--profile",
                            "basic"])
    assert code == 2
    assert "bucket root" in capsys.readouterr().err

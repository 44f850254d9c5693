"""deid verify over a bucket (S3 on the moto server of tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import s3_client
from pydicom.data import get_testdata_file

from deid.cli import main

SECRET = "verify-bucket-0123456789abcdef"


def test_verify_reads_originals_and_outputs_from_s3(moto_s3, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    originals, outputs = tmp_path / "in", tmp_path / "out"
    originals.mkdir()
    outputs.mkdir()
    for name in ("CT_small.dcm", "rtplan.dcm"):
        shutil.copy(get_testdata_file(name), originals / name)
        assert main(["file", str(originals / name), str(outputs), "-p", "basic"]) == 0
    s3 = s3_client(moto_s3)
    bucket = "deid-verify-test"
    s3.create_bucket(Bucket=bucket)
    for folder in (originals, outputs):
        for path in sorted(folder.iterdir()):
            s3.put_object(Bucket=bucket, Key=f"{folder.name}/{path.name}",
                          Body=Path(path).read_bytes())
    options = ["--s3_endpoint_url", moto_s3["endpoint"],
               "--s3_access_key_id", moto_s3["access_key"],
               "--s3_secret_access_key", moto_s3["secret_key"],
               "--s3_region_name", moto_s3["region"]]
    capsys.readouterr()
    assert main(["verify", "--original", f"s3://{bucket}/in", "--deidentified",
                 f"s3://{bucket}/out", "-p", "basic", *options]) == 0
    assert "2 instance(s): 2 passed" in capsys.readouterr().out
    # Bucket options without a bucket path are a usage error, not silently ignored.
    with pytest.raises(SystemExit) as stopped:
        main(["verify", "--original", str(originals), "--deidentified", str(outputs),
              "-p", "basic", *options[:2]])
    assert stopped.value.code == 2

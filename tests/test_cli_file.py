"""`deid file`: one file in, one file out; exit codes scripts can trust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dicom_factory import base_dataset, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file

from deid.cli import main

CT = get_testdata_file("CT_small.dcm")


def test_writes_a_deidentified_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    out = tmp_path / "out.dcm"
    assert main(["file", CT, str(out), "--profile", "basic", "-p", "retain-uids"]) == 0
    ds = dcmread(out)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.SOPInstanceUID == dcmread(CT).SOPInstanceUID  # retain-uids
    assert not list(tmp_path.glob("*.partial"))
    assert "a-test-secret" not in capsys.readouterr().out


def test_a_folder_output_is_named_by_the_new_uid(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    assert main(["file", CT, str(tmp_path), "-p", "basic"]) == 0
    (written,) = tmp_path.glob("*.dcm")
    assert written.stem == dcmread(written).SOPInstanceUID


def test_rejection_exits_1_with_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    source = tmp_path / "us.dcm"
    source.write_bytes(to_bytes(base_dataset("1.2.840.10008.5.1.4.1.1.6.1", "US")))
    assert main(["file", str(source), str(tmp_path / "o.dcm"), "-p", "basic"]) == 1
    err = capsys.readouterr().err
    assert "burned_in_annotation" in err and "Doe" not in err
    assert not (tmp_path / "o.dcm").exists()


def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    assert main(["file", CT, str(tmp_path / "o.dcm"), "-p", "basic"]) == 2
    assert "DEID_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrules:\n  - {attribute: PatientNmae, action: X}\n")
    assert main(["file", CT, str(tmp_path / "o.dcm"), "-p", str(bad)]) == 2
    assert f"{bad}:3:17: unknown keyword 'PatientNmae'" in capsys.readouterr().err
    assert main(["file", str(tmp_path / "missing.dcm"), str(tmp_path / "o.dcm"),
                 "-p", "basic"]) == 2


def test_throwaway_key_runs_without_a_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    assert main(["file", CT, str(tmp_path / "o.dcm"), "-p", "basic", "--throwaway-key"]) == 0


def test_the_command_does_not_import_beam(tmp_path):
    code = ("import sys; from deid.cli import main; "
            f"main(['file', {CT!r}, {str(tmp_path / 'o.dcm')!r}, '-p', 'basic', "
            "'--throwaway-key']); assert 'apache_beam' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert Path(tmp_path / "o.dcm").exists()


def test_above_the_threshold_the_file_is_streamed_to_the_same_bytes(tmp_path, monkeypatch):
    import deid.engine
    from benchmarks.huge import synthesize

    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    source = tmp_path / "big.dcm"
    synthesize(source, 3 << 20, encapsulated=True)
    in_memory, streamed = tmp_path / "memory.dcm", tmp_path / "streamed.dcm"
    assert main(["file", str(source), str(in_memory), "-p", "basic"]) == 0
    calls = []
    real = deid.engine.deidentify_stream
    monkeypatch.setattr(deid.engine, "deidentify_stream",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(["file", str(source), str(streamed), "-p", "basic",
                 "--stream-threshold-mb", "1"]) == 0
    assert calls and streamed.read_bytes() == in_memory.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_a_streamed_rejection_leaves_no_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")
    source = tmp_path / "cut.dcm"
    source.write_bytes(Path(CT).read_bytes()[:-100])  # inside the pixel data
    assert main(["file", str(source), str(tmp_path), "-p", "basic",
                 "--stream-threshold-mb", "0"]) == 1
    assert "truncated" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.dcm"]


def test_a_negative_stream_threshold_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["file", str(tmp_path / "in.dcm"), str(tmp_path / "out.dcm"), "-p", "basic",
              "--stream-threshold-mb", "-1"])
    assert exit_.value.code == 2 and "0 or more" in capsys.readouterr().err

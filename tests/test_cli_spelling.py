"""The command line without rough edges: every option in both spellings, the same short forms
everywhere, a suggestion for a mistyped option, plain messages for missing files, and
`deid file` never overwriting its input or an existing output unasked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from deid.cli import main

CT = get_testdata_file("CT_small.dcm")


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("DEID_SECRET", "a-test-secret-long-enough")


def _usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["--secret-file", "--secret_file"])
def test_every_option_takes_both_spellings(spelling, tmp_path, capsys):
    key = tmp_path / "key"
    key.write_text("a-test-secret-long-enough")
    out = tmp_path / "out.dcm"
    assert main(["file", CT, str(out), "-p", "basic", spelling, str(key),
                 "--stream_threshold_mb", "0"]) == 0
    assert main(["explain", CT, "-p", "basic", f"{spelling}={key}", "--changes_only"]) == 0
    assert "throwaway" not in capsys.readouterr().out.splitlines()[1]  # the key file is used
    assert main(["diff", CT, str(out), "--no_meta", "--show-values"]) == 1
    assert main(["profile", "lint", "basic", "retain-uids", "--separately"]) == 0


def test_p_is_profile_in_every_command(tmp_path, capsys):
    assert main(["profile", "show", "-p", "basic", "-a", "PatientName"]) == 0
    assert "PatientName" in capsys.readouterr().out
    assert main(["profile", "lint", "-p", "basic", "-p", "retain-uids"]) == 0
    assert "basic + retain-uids: no problems" in capsys.readouterr().out


def test_p_is_profile_in_deid_run_too(tmp_path, secret):
    from pipelines.deidentify import plan

    (tmp_path / "in").mkdir()  # an input folder with nothing in it is a usage error now
    shutil.copy(CT, tmp_path / "in")
    run = plan(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                "-p", "basic", "-p", "retain-uids"])
    assert run.profile.names == ("basic", "retain-uids")


@pytest.mark.parametrize("argv, typo, suggestion", [
    (["profile", "lint", "basic", "--seperately"], "--seperately", "--separately"),
    (["explain", CT, "-p", "basic", "--show-value"], "--show-value", "--show-values"),
    (["explain", CT, "-p", "basic", "--show_value"], "--show_value", "--show_values"),
    (["file", CT, "o.dcm", "-p", "basic", "--throwaway"], "--throwaway", "--throwaway-key"),
    (["diff", CT, CT, "--no-meat"], "--no-meat", "--no-meta"),
])
def test_a_mistyped_option_gets_a_suggestion(argv, typo, suggestion, capsys):
    err = _usage_error(argv, capsys)
    assert f"unrecognized arguments: {typo} (did you mean {suggestion}?)" in err


def test_verify_suggests_too(capsys):
    err = _usage_error(["verify", "--original", CT, "--deidentified", CT, "-p", "basic",
                        "--jsn", "x"], capsys)
    assert "--jsn (did you mean --json?)" in err


def test_a_missing_profile_file_is_named_plainly(tmp_path, secret, capsys):
    missing = "cur/device.yaml"
    assert main(["file", CT, str(tmp_path / "o.dcm"), "-p", missing]) == 2
    err = capsys.readouterr().err
    assert f"no such file: {missing}" in err and ":0:0" not in err
    assert main(["explain", CT, "-p", "basic", "-p", missing]) == 2
    assert f"no such file: {missing}" in capsys.readouterr().err
    assert main(["profile", "lint", missing]) == 2
    assert f"no such file: {missing}" in capsys.readouterr().err


def test_a_missing_profile_file_suggests_a_close_name(tmp_path, secret, capsys):
    (tmp_path / "device.yaml").write_text("name: device\nextends: [basic]\n")
    assert main(["profile", "show", str(tmp_path / "devise.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"no such file: {tmp_path / 'devise.yaml'}" in err
    assert f"did you mean {str(tmp_path / 'device.yaml')!r}?" in err


def test_file_refuses_to_overwrite_its_input(tmp_path, secret, capsys):
    source = tmp_path / "ct.dcm"
    source.write_bytes(Path(CT).read_bytes())
    before = source.read_bytes()
    for output in (str(source), str(tmp_path / "." / "ct.dcm")):
        assert main(["file", str(source), output, "-p", "basic", "--force"]) == 2
        assert "is the input" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_an_existing_output_needs_force(tmp_path, secret, capsys):
    out = tmp_path / "out.dcm"
    out.write_bytes(b"earlier")
    assert main(["file", CT, str(out), "-p", "basic"]) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"earlier"
    assert main(["file", CT, str(out), "-p", "basic", "--force"]) == 0
    assert out.read_bytes() != b"earlier"


def test_an_existing_output_in_a_folder_needs_force(tmp_path, secret, capsys):
    assert main(["file", CT, str(tmp_path), "-p", "basic"]) == 0
    (written,) = tmp_path.glob("*.dcm")
    capsys.readouterr()
    assert main(["file", CT, str(tmp_path), "-p", "basic"]) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.partial"))
    assert main(["file", CT, str(tmp_path), "-p", "basic", "--force"]) == 0


@pytest.mark.parametrize("where", ["a-file/out.dcm", "no-folder/out.dcm"])
def test_a_failure_to_write_is_one_line_and_exit_1(where, tmp_path, secret, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["file", CT, str(tmp_path / where), "-p", "basic"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"deid: cannot write {tmp_path / where}")
    assert "Traceback" not in err


def test_version(capsys):
    from deid import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"deid {__version__} (PS3.15 ")


def test_beam_options_of_deid_run_take_both_spellings_too(tmp_path, secret):
    from apache_beam.options.pipeline_options import DirectOptions

    from pipelines.deidentify import plan

    (tmp_path / "in").mkdir()  # an input folder with nothing in it is a usage error now
    shutil.copy(CT, tmp_path / "in")
    run = plan(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                "-p", "basic", "--direct-num-workers", "3", "--direct_running_mode",
                "in_memory", "--allow-quarantine"])
    direct = run.options.view_as(DirectOptions)
    assert (direct.direct_num_workers, direct.direct_running_mode) == (3, "in_memory")
    assert run.allow_quarantine

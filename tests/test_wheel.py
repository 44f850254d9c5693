"""The package as cloud workers install it: a built wheel, not this checkout.

An editable install imports from the source tree and hid a wheel without ``deid.verify``, which
broke ``deid run`` on every Dataflow, Flink or Spark worker. These tests build the wheel, check
that it carries every module and data file of the source tree, and run it from a fresh virtual
environment outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pydicom.data
import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY = "ab" * 32  # a test key, not a secret


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources: a stale build/ folder in the checkout would fill gaps."""
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".peers", "build", "out", "*.egg-info", "__pycache__", ".*_cache"))
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder),
                    str(source)], check=True, capture_output=True)
    return next(folder.glob("*.whl"))


def _source_files() -> set[str]:
    """What the wheel must hold, by the path it has inside the wheel."""
    expected = {
        path.relative_to(ROOT).as_posix()
        for top in ("deid", "pipelines")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    expected |= {f"deid/builtin_profiles/{path.name}" for path in (ROOT / "profiles").glob("*")
                 if path.suffix in {".yaml", ".py"}}
    expected |= {path.relative_to(ROOT).as_posix()
                 for path in (ROOT / "deid" / "standard" / "data").glob("*.json")}
    return expected


def test_the_wheel_holds_every_module_and_data_file_of_the_source_tree(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the wheel (add the package to pyproject.toml): {missing}"


def test_a_built_wheel_finds_the_builtin_profiles(wheel: Path, tmp_path: Path):
    """Imported from the wheel itself, the profiles load as package data."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import deid.profile as p; "
            "assert p.load_profiles(['basic', 'retain-safe-private']).by_private; "
            "assert p.__file__.startswith(sys.argv[1])")
    subprocess.run([sys.executable, "-I", "-c", code, str(wheel)], check=True, cwd=tmp_path)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its Beam extra, without the test extras."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
         "--disable-pip-version-check", f"{wheel}[beam]"],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv


def _run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", DEID_SECRET=KEY)
    return subprocess.run([str(venv / "bin" / "deid"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_runs_the_job_and_one_file_outside_the_checkout(
        installed: Path, tmp_path: Path):
    python = installed / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import deid.verify, pytest"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert "No module named 'pytest'" in where.stderr, "the test extras leaked into the venv"
    located = subprocess.run(
        [str(python), "-c", "import deid.verify, pipelines.deidentify; print(deid.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True)
    assert located.stdout.startswith(str(installed)), located.stdout

    run = _run(installed, ["run", "--sample", "--profile", "basic", "--output", "out",
                           "--allow_quarantine", "--verify"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "out" / "manifest.jsonl").read_text().count("\n") > 50
    assert list((tmp_path / "out").rglob("*.dcm"))

    source = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    one = _run(installed, ["file", str(source), "ct.dcm", "--profile", "basic"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    written = pydicom.dcmread(tmp_path / "ct.dcm")
    original = pydicom.dcmread(source)
    assert written.SOPInstanceUID != original.SOPInstanceUID
    assert written.PixelData == original.PixelData

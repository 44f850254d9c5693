"""The peers, each in its own virtualenv under benchmarks/.peers/ (gitignored): pydicom/deid
is imported as `deid`, like this project, so no peer may enter the project's venv."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).parent / ".peers"


@dataclass(frozen=True)
class Peer:
    tool: str  # the name measure.py knows it by
    package: str  # on PyPI
    module: str  # imported to check the install

    @property
    def python(self) -> Path:
        return FOLDER / self.tool / "bin" / "python"

    def installed(self) -> bool:
        if not self.python.exists():
            return False
        check = subprocess.run([str(self.python), "-c", f"import {self.module}"],
                               cwd=FOLDER, capture_output=True)
        return check.returncode == 0

    def install(self) -> str | None:
        """Create the venv and pip-install the package; None, or why it failed."""
        FOLDER.mkdir(exist_ok=True)
        base = getattr(sys, "_base_executable", sys.executable)
        steps = ([base, "-m", "venv", str(FOLDER / self.tool)],
                 [str(self.python), "-m", "pip", "install", "-q", self.package])
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode:
                lines = (done.stderr.strip().splitlines() or ["no output"])
                return f"`{' '.join(step[2:])}` failed: {lines[-1][:120]}"
        return None if self.installed() else f"{self.module} does not import after install"

    def version(self) -> str:
        done = subprocess.run([str(self.python), "-m", "pip", "show", self.package],
                              capture_output=True, text=True)
        return next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                     if line.startswith("Version:")), "?")


PEERS = (
    Peer("dicognito", "dicognito", "dicognito"),
    Peer("dicom-anonymizer", "dicom-anonymizer", "dicomanonymizer"),
    Peer("pydicom-deid", "deid", "deid.dicom"),
)


def ensure(install: bool) -> dict[str, str | None]:
    """Each peer's tool name -> None when usable, else why not."""
    status: dict[str, str | None] = {}
    for peer in PEERS:
        if peer.installed():
            status[peer.tool] = None
        elif install:
            print(f"installing {peer.package} into {FOLDER / peer.tool} ...", flush=True)
            status[peer.tool] = peer.install()
        else:
            status[peer.tool] = "not installed"
    return status

"""One measurement in a fresh process: a tool de-identifies every file of a folder.

    python benchmarks/measure.py TOOL INPUT_FOLDER OUTPUT_FOLDER RESULT_JSON

Run as a script, by path, by the project's interpreter or by a peer's own (each peer has its
venv under benchmarks/.peers/, since pydicom/deid's import name is also `deid`). It imports
nothing of the benchmarks package, so under a peer's interpreter `deid` is that peer. The
clock runs after the imports and the listing of the folder: interpreter start-up is excluded,
the tool's own set-up (profile, recipe, pipeline start) is included. CPU time is measured
over the same span. The parent reads this process's peak memory from wait4().
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_KEY = b"benchmark-key-not-secret-0123456789"  # fixed, so runs are comparable


def floor(files: list[Path], out: Path) -> Callable[[], None]:
    """pydicom read and write of every file: the floor any pydicom-based tool pays."""
    from pydicom import dcmread

    def run() -> None:
        for path in files:
            dcmread(path).save_as(out / path.name)
    return run


def engine(files: list[Path], out: Path) -> Callable[[], None]:
    """deid.engine.deidentify_bytes in this process, as `deid file` uses it."""
    from deid.engine import Output, deidentify_bytes
    from deid.keys import SecretKey
    from deid.profile import load_profiles

    def run() -> None:
        profile = load_profiles(["basic"])
        key = SecretKey(BENCH_KEY, "benchmark")
        for path in files:
            result = deidentify_bytes(path.read_bytes(), profile, key)
            if isinstance(result, Output):
                (out / path.name).write_bytes(result.data)
    return run


def _beam(files: list[Path], out: Path, *mode: str) -> Callable[[], None]:
    """The real pipeline, `deid run`, on the local runner."""
    import contextlib
    import io

    from pipelines.deidentify import main

    os.environ["DEID_SECRET"] = BENCH_KEY.decode()
    argv = ["--input", str(files[0].parent), "--output", str(out), "--profile", "basic",
            "--quarantine_output", str(out) + "-quarantine", *mode]

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            main(argv)
    return run


def beam_in_memory(files: list[Path], out: Path) -> Callable[[], None]:
    return _beam(files, out, "--direct_running_mode", "in_memory")


def beam_2_workers(files: list[Path], out: Path) -> Callable[[], None]:
    return _beam(files, out, "--direct_running_mode", "multi_processing",
                 "--direct_num_workers", "2")


def dicognito(files: list[Path], out: Path) -> Callable[[], None]:
    """dicognito's documented use: one Anonymizer for all instances, default settings."""
    from dicognito.anonymizer import Anonymizer
    from pydicom import dcmread

    def run() -> None:
        anonymizer = Anonymizer()
        for path in files:
            with dcmread(path) as dataset:
                anonymizer.anonymize(dataset)
                dataset.save_as(out / path.name)
    return run


def dicom_anonymizer(files: list[Path], out: Path) -> Callable[[], None]:
    """dicom-anonymizer's anonymize_dicom_file with its default rules (private tags removed)."""
    from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file

    def run() -> None:
        for path in files:
            anonymize_dicom_file(str(path), str(out / path.name))
    return run


def pydicom_deid(files: list[Path], out: Path) -> Callable[[], None]:
    """pydicom/deid's replace_identifiers with its default recipe (deid.dicom)."""
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    def run() -> None:
        replace_identifiers([str(p) for p in files], deid=DeidRecipe(), save=True,
                            output_folder=str(out))
    return run


TOOLS = {f.__name__.replace("_", "-"): f for f in (
    floor, engine, beam_in_memory, beam_2_workers, dicognito, dicom_anonymizer, pydicom_deid)}


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (the pipeline's workers): steadier
    than wall time on a machine shared with other work."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def written(out: Path) -> int:
    return sum(1 for p in out.rglob("*.dcm") if p.is_file())


def main(tool: str, source: str, target: str, result: str) -> None:
    files = sorted(Path(source).glob("*.dcm"))
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    run = TOOLS[tool](files, out)
    cpu, start = cpu_seconds(), time.perf_counter()
    run()
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    Path(result).write_text(json.dumps({"tool": tool, "instances": len(files),
                                        "written": written(out), "seconds": seconds,
                                        "cpu_seconds": cpu}))


if __name__ == "__main__":
    main(*sys.argv[1:])

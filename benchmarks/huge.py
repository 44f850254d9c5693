"""Huge instances: time and peak memory of de-identifying them by streaming, against a copy.

    python -m benchmarks.huge                      # 64 MB, a quick run
    python -m benchmarks.huge --size-mb 512 --size-mb 2048 --json out/huge.json

For each size it synthesizes a native (uncompressed, multi-frame) and an encapsulated
(multi-fragment) instance in a temporary folder, then, each in a fresh subprocess, copies it
with shutil.copyfile and de-identifies it with deid.engine.stream.deidentify_stream (basic
profile, a throwaway key), without and with the sha256 the pipeline's manifest needs, and
prints a Markdown table: seconds, MB/s, the ratio of the
throughput to the copy's, and the peak resident memory of the subprocess (ru_maxrss, which
includes the interpreter and pydicom). Each figure is the fastest of --repeat runs, each
started after `sync`; outputs go to the page cache, as a copy's do. --in-memory adds
deidentify_bytes, for contrast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLOCK = 1 << 20
ROWS = COLUMNS = 512  # 16-bit: 512 KiB a frame
FRAME = ROWS * COLUMNS * 2
# stream: as `deid file` does; stream+sha256: as the pipeline does, hashing for the manifest.
METHODS = ("copy", "stream", "stream+sha256", "in-memory")


def _header(encapsulated: bool, frames: int) -> bytes:
    """A small identifiable MR header, encoded as a file without its pixel data."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import JPEG2000Lossless, MRImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        generate_uid(), generate_uid(), generate_uid())
    ds.Modality, ds.BurnedInAnnotation = "MR", "NO"
    ds.PatientName, ds.PatientID, ds.StudyDate = "Doe^Jane", "PID-0001", "20240102"
    ds.InstitutionName = "General Hospital"
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLUMNS, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless if encapsulated else "1.2.840.10008.1.2.1"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _fill(out, length: int, block: bytes) -> None:
    while length > 0:
        part = block[:length]
        out.write(part)
        length -= len(part)


def synthesize(path: Path, size: int, encapsulated: bool, seed: int = 0) -> None:
    """Write an instance of about ``size`` bytes (at least one frame), its pixel data in
    blocks: native as one OW value (PS3.5 A.4 explicit VR little endian), encapsulated as an
    empty basic offset table and one fragment per frame. The bytes are random, not images:
    nothing here decodes them."""
    frames = max(1, size // FRAME)
    block = random.Random(seed).randbytes(BLOCK)
    with path.open("wb") as out:
        out.write(_header(encapsulated, frames))
        if not encapsulated:
            out.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, frames * FRAME))
            _fill(out, frames * FRAME, block)
            return
        out.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
        out.write(struct.pack("<HHL", 0xFFFE, 0xE000, 0))  # basic offset table, empty
        for frame in range(frames):
            out.write(struct.pack("<HHL", 0xFFFE, 0xE000, FRAME))
            _fill(out, FRAME, block[frame % 64:] + block[:frame % 64])
        out.write(struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))


def _work(method: str, source: Path, target: Path) -> None:
    """In the measured subprocess: one method, then its peak memory as JSON on stdout."""
    import resource

    start = time.perf_counter()
    if method == "copy":
        shutil.copyfile(source, target)
    else:
        from deid.engine import Rejection, deidentify_bytes
        from deid.engine.stream import deidentify_stream
        from deid.keys import SecretKey
        from deid.profile import load_profiles

        profile, key = load_profiles(["basic"]), SecretKey.throwaway()
        start = time.perf_counter()  # the imports and profile are not the work measured
        if method.startswith("stream"):
            with source.open("rb") as f, target.open("wb") as sink:
                result = deidentify_stream(f, sink, profile, key, digest=method.endswith("256"))
        else:
            result = deidentify_bytes(source.read_bytes(), profile, key)
            if not isinstance(result, Rejection):
                target.write_bytes(result.data or b"")
        if isinstance(result, Rejection):
            raise SystemExit(f"rejected: {result.reason}: {result.message}")
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kib / 1024}))


def _measure(method: str, source: Path, target: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` runs (the machine may be shared), each after writing back
    what earlier runs left dirty in the page cache; peak memory is the largest seen."""
    runs = []
    for _ in range(repeat):
        os.sync()
        done = subprocess.run([sys.executable, "-m", "benchmarks.huge", "--worker", method,
                               str(source), str(target)], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            raise SystemExit(f"{method} failed: {done.stderr.strip()[-500:]}")
        target.unlink()
        runs.append(json.loads(done.stdout))
    return {"seconds": min(r["seconds"] for r in runs),
            "peak_mb": max(r["peak_mb"] for r in runs)}


def run(sizes_mb: list[int], in_memory: bool, folder: Path, repeat: int) -> list[dict]:
    rows = []
    for size_mb in sizes_mb:
        for kind in ("native", "encapsulated"):
            source = folder / f"{kind}-{size_mb}.dcm"
            synthesize(source, size_mb << 20, kind == "encapsulated")
            mb = source.stat().st_size / 1e6
            copy = None
            for method in METHODS if in_memory else METHODS[:-1]:
                measured = _measure(method, source, folder / "out.dcm", repeat)
                rate = mb / measured["seconds"]
                copy = copy or rate
                rows.append({"size_mb": round(mb, 1), "kind": kind, "path": method,
                             "seconds": round(measured["seconds"], 3),
                             "mb_per_s": round(rate, 1), "ratio_to_copy": round(rate / copy, 2),
                             "peak_mb": round(measured["peak_mb"], 1)})
            source.unlink()
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| size MB | instance | path | seconds | MB/s | x copy | peak MB |",
             "|---:|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['size_mb']} | {r['kind']} | {r['path']} | {r['seconds']} | "
              f"{r['mb_per_s']} | {r['ratio_to_copy']} | {r['peak_mb']} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.huge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, action="append", metavar="MB",
                        help="instance size in MiB; repeat for several (default 64)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    parser.add_argument("--in-memory", action="store_true",
                        help="also measure deidentify_bytes (needs the file's size in memory)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="runs of each measurement; the fastest counts (default 3)")
    parser.add_argument("--dir", type=Path, help="where to synthesize (default: a temp folder)")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SOURCE", "TARGET"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, source, target = args.worker
        _work(method, Path(source), Path(target))
        return 0
    with tempfile.TemporaryDirectory(prefix="deid-huge-", dir=args.dir) as folder:
        rows = run(args.size_mb or [64], args.in_memory, Path(folder), args.repeat)
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a rerun over a finished collection costs, against the run that made it.

    python -m benchmarks.rerun [--count 4000] [--folder benchmarks/.rerun]

Builds a corpus of COUNT distinct instances (benchmarks.corpus), runs `deid run` over it into
a new collection (in_memory, the default runner), then runs the same command again: the
ledger says every input is done, so the rerun lists the inputs, reads the ledger, skips
everything and merges the sidecars, de-identifying nothing. Each run is timed in its own
process, from start to exit (interpreter and Beam start-up included, as a user waits). Prints
both times and their ratio (goal of issue 14: under 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.corpus import build

KEY = "benchmark-key-not-secret-0123456789"


def timed_run(corpus: Path, out: Path) -> tuple[float, int, str]:
    """Seconds, exit code and the summary of one `deid run` in a fresh process."""
    env = {**os.environ, "DEID_SECRET": KEY}
    command = [sys.executable, "-m", "deid.cli", "run", "--input", str(corpus), "--output",
               str(out), "--profile", "basic", "--linkage_output", f"{out}-linkage"]
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):
        sys.exit(f"deid run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.returncode, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--folder", type=Path, default=Path("benchmarks/.rerun"))
    args = parser.parse_args()
    corpus = args.folder / f"corpus-{args.count}"
    if not corpus.is_dir() or len(list(corpus.iterdir())) != args.count:
        shutil.rmtree(corpus, ignore_errors=True)
        build(corpus, args.count)
    out = args.folder / "collection"
    for leftover in (out, Path(f"{out}-quarantine"), Path(f"{out}-linkage")):
        shutil.rmtree(leftover, ignore_errors=True)

    first, first_code, _ = timed_run(corpus, out)
    rerun, rerun_code, _ = timed_run(corpus, out)
    records = sorted((out / "runs").glob("*.json"))
    counts = json.loads(records[-1].read_text())["counts"]
    print(f"instances: {args.count}")
    print(f"first run: {first:7.1f} s (exit {first_code}), "
          f"{counts.get('collection_written', 0)} instances in the collection")
    print(f"rerun:     {rerun:7.1f} s (exit {rerun_code}), "
          f"{counts.get('already_written', 0)} already written, "
          f"{counts.get('instances_read', 0)} read")
    print(f"rerun / first run: {rerun / first:.1%}")


if __name__ == "__main__":
    main()

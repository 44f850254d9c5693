"""The benchmark's table (Markdown) and plot (PNG) from its measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Row(Protocol):
    tool: str
    instances: int
    written: int | None
    seconds: float | None
    cpu_seconds: float | None
    peak_mb: float | None
    startup_seconds: float | None
    error: str | None


HEADER = ("| tool | N | written | seconds | instances/s | ms/instance | ratio to floor | "
          "CPU s | CPU ratio | peak MB | start-up s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")


def _per_instance(row: Row) -> float | None:
    return row.seconds / row.instances * 1000 if row.seconds is not None else None


def _ratio(value: float, floor: float | None) -> str:
    return f"{value / floor:.2f}x" if floor else "-"


def _line(row: Row, floor: Row | None) -> str:
    if row.error:
        return f"| {row.tool} | {row.instances} |{' - |' * 8} {row.error} |\n"
    ms = _per_instance(row)
    wall_floor, cpu_floor = (floor.seconds, floor.cpu_seconds) if floor else (None, None)
    startup = f"{row.startup_seconds:.1f}" if row.startup_seconds is not None else ""
    return (f"| {row.tool} | {row.instances} | {row.written} | {row.seconds:.2f} | "
            f"{row.instances / row.seconds:.1f} | {ms:.2f} | {_ratio(row.seconds, wall_floor)} | "
            f"{row.cpu_seconds:.2f} | {_ratio(row.cpu_seconds, cpu_floor)} | "
            f"{row.peak_mb:.0f} | {startup} |\n")


def markdown(rows: list[Row], meta: dict) -> str:
    """The table, one row per (tool, N), then the pipeline's scaling from 1 to 2 workers."""
    m = meta["machine"]
    text = (f"Machine: {m['nproc']} cores, {m['cpu']}, {m['system']}; Python {m['python']}, "
            f"pydicom {m['pydicom']}, apache-beam {m['apache-beam']}")
    if meta.get("peers"):
        text += "; " + ", ".join(f"{tool} {v}" for tool, v in meta["peers"].items())
    text += ".\n\n" + HEADER
    by_key = {(r.tool, r.instances): r for r in rows}
    for row in rows:
        text += _line(row, by_key.get(("floor", row.instances)))
    scaling = []
    for size in meta["sizes"]:
        one, two = by_key.get(("beam-in-memory", size)), by_key.get(("beam-2-workers", size))
        if one and two and one.seconds and two.seconds:
            scaling.append(f"N={size}: {one.seconds / two.seconds:.2f}x")
    if scaling:
        text += ("\nPipeline with 2 worker processes against 1 (in memory): "
                 + ", ".join(scaling) + ".\n")
    text += ("\nSeconds (wall) exclude interpreter start-up and imports, and include each tool's "
             "set-up (for the pipeline: its start, whose cost alone is the run over one "
             "instance, `start-up s`). CPU s is the CPU time over the same span, worker "
             "processes included: the steadier figure on a shared machine. Peak MB is the "
             "largest resident set of the process and its worker processes, not their sum.\n")
    if meta.get("repeat", 1) > 1:
        text += (f"\nEach row of the floor and of our own tools is the run with the least CPU "
                 f"time of {meta['repeat']}, measured round after round (all tools, then all "
                 "again); peers ran once.\n")
    return text


def plot(rows: list[Row], path: Path) -> None:
    """Seconds against N, one line per tool (matplotlib, Agg: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for tool in dict.fromkeys(r.tool for r in rows):
        points = sorted((r.instances, r.seconds) for r in rows
                        if r.tool == tool and r.seconds is not None)
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=tool)
    axes.set_xlabel("instances (N)")
    axes.set_ylabel("seconds")
    axes.set_title("De-identification time against corpus size")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

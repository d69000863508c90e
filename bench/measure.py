"""Clocks, memory readings and the JSON-lines report shared by every benchmark.

Why a module of its own: every number must be taken the same way (CUDA synchronised before a clock
is read, peak memory reset before each measurement) and printed the same way (one JSON object per
line on stdout, nothing else there), so the bench's numbers can be compared and parsed.
"""
from __future__ import annotations

import itertools
import json
import platform
import resource
import statistics
import sys
import time
from typing import IO

GIB = 2 ** 30
PROJECTED_STEPS = 320


class Reporter:
    """Writes one JSON object per line to `stream` (the real stdout) and, if given, to a file."""

    def __init__(self, stream: IO[str], path=None):
        self.stream = stream
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115  (kept for the run)
        self.records: list[dict] = []

    def emit(self, record: dict) -> dict:
        line = json.dumps(record, sort_keys=False, default=_jsonable)
        for out in (self.stream, self.file):
            if out is not None:
                out.write(line + "\n")
                out.flush()
        self.records.append(record)
        return record

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def sync(device: str) -> None:
    if device == "cuda":
        import torch
        torch.cuda.synchronize()


def now(device: str) -> float:
    """A wall clock read after the GPU has finished what was queued."""
    sync(device)
    return time.perf_counter()


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch
        torch.cuda.reset_peak_memory_stats()


def memory_fields(device: str, resident_before: float | None) -> dict:
    """peak_memory_gib: torch.cuda.max_memory_allocated since the last reset (weights included);
    null on the CPU, where only the process's lifetime RSS peak is known."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB
    fields = {"peak_memory_gib": None, "resident_before_gib": resident_before,
              "process_max_rss_gib": round(rss, 3)}
    if device == "cuda":
        import torch
        fields["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
    return fields


def resident_gib(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch
    return round(torch.cuda.memory_allocated() / GIB, 3)


def step_stats(stamps: list[float], warmup: int) -> dict:
    """Per-step figures from the end time of each step (stamps[0] = just before step 1).
    The steady figure is the median of the steps after `warmup` (first-call allocation and
    kernel selection make early steps slow); with too few steps every step counts."""
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    if not intervals:
        raise ValueError("no step was timed")
    steady = intervals[warmup:] if len(intervals) > warmup else intervals
    return {"seconds_first_step": round(intervals[0], 4),
            "seconds_per_step": round(statistics.median(steady), 4),
            "seconds_per_step_mean": round(statistics.fmean(steady), 4),
            "steady_steps_timed": len(steady)}


def projection(setup_seconds: float, per_step: float, steps_run: int, measured_total: float) -> dict:
    """The 320-step time: the measured total when exactly 320 steps ran, else PROJECTED (labelled)."""
    if steps_run == PROJECTED_STEPS:
        return {"projected_320_steps_seconds": round(measured_total, 2), "projection": "measured"}
    return {"projected_320_steps_seconds": round(setup_seconds + PROJECTED_STEPS * per_step, 2),
            "projection": f"projected: setup + {PROJECTED_STEPS} x median steady step, from {steps_run} "
                          "steps run; not measured"}


def header(args, device: str) -> dict:
    """What produced the numbers: command line, versions, device and math settings."""
    import comfyui_version
    import torch
    info = {"bench": "header", "command": " ".join([sys.executable, *sys.argv]),
            "python": platform.python_version(), "torch": torch.__version__,
            "comfyui": comfyui_version.__version__, "device": device, "tiny": bool(args.tiny),
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / GIB, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
                    cudnn_tf32=torch.backends.cudnn.allow_tf32)
    return info

"""What the identity costs at generation time: the same KSampler run (same seed, prompt and latent)
on the plain model, with Apply ID-Adapter on the model at weight 1 and at weight 0, and with Apply
ID-Adapter to Conditioning at weight 1 (computed once before sampling: its one-off cost is reported
apart, and its output is compared with the model patch's).

Each variant is run once untimed (loading, kernel selection), then the variants are timed in turn,
`reps` rounds, so slow drift of the machine hits all of them alike. The KSampler's progress bar
gives per-step times (the UNet's share); the whole node call is reported too.
"""
from __future__ import annotations

import itertools
import logging
import statistics
import time

import measure
import torch
from bench_training import make_identity

log = logging.getLogger(__name__)

PROMPT = "a photo of a face of a person, studio light"
NEGATIVE = "blurry, low quality"
CFG = 7.0
TRAINED_GAMMA = 0.5  # an untrained adapter's gate is shut (gamma 0) and would be skipped entirely
CONDITIONING_RUNS = 5  # the first is cold (copies of the adapter made); the median of the rest is warm


class _StepTimes:
    def __init__(self, device: str):
        self.device, self.stamps = device, []

    def __call__(self, value, total, preview, node_id=None):
        self.stamps.append(measure.now(self.device))


def _variants(host, models, positive, seed: int) -> tuple[dict, list[float]]:
    """name -> (model, positive conditioning); and the seconds each run of Apply ID-Adapter to
    Conditioning took (it runs on the prompt's device, the CPU unless the host keeps text on the GPU)."""
    identity = make_identity(host, models.clip, seed)
    with torch.inference_mode(), torch.no_grad():
        identity.adapter.gamma.fill_(TRAINED_GAMMA)

    def applied(weight: float):
        return host.run("IDEA_ApplyIDAdapter", model=models.model, identity=identity, weight=weight,
                        start_at=0.0, end_at=1.0, apply_to="cond")[0]

    seconds = []
    for _ in range(CONDITIONING_RUNS):
        start = time.perf_counter()
        (adapted,) = host.run("IDEA_ApplyIDAdapterConditioning", conditioning=positive, identity=identity,
                              weight=1.0)
        seconds.append(time.perf_counter() - start)
    return {"plain": (models.model, positive), "id_adapter_w1": (applied(1.0), positive),
            "id_adapter_w0": (applied(0.0), positive),
            "id_conditioning_w1": (models.model, adapted)}, seconds


def _sample(host, model, positive, inputs: dict, device: str) -> tuple[float, list[float], torch.Tensor]:
    import comfy.utils
    clock = _StepTimes(device)
    comfy.utils.set_progress_bar_global_hook(clock)
    try:
        start = measure.now(device)
        (latent,) = host.run("KSampler", model=model, positive=positive, **inputs)
        end = measure.now(device)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    steps = [b - a for a, b in itertools.pairwise(clock.stamps)]  # steps 2..N
    return end - start, steps, latent["samples"]


def bench_sampling(host, reporter, models, device: str, steps: int, resolution: int, reps: int,
                   seed: int = 0, cfg: float = CFG, scheduler: str = "normal") -> None:
    """cfg, scheduler: how the base is sampled (FLUX.1-dev: CFG 1 on the simple schedule, so no
    negative pass; the host gives its guidance input the default 3.5)."""
    positive = host.run("CLIPTextEncode", clip=models.clip, text=PROMPT)[0]
    negative = host.run("CLIPTextEncode", clip=models.clip, text=NEGATIVE)[0]
    (latent,) = host.run("EmptyLatentImage", width=resolution, height=resolution, batch_size=1)
    inputs = {"seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": scheduler,
              "negative": negative, "latent_image": latent, "denoise": 1.0}
    variants, conditioning_seconds = _variants(host, models, positive, seed)
    outputs = {name: _sample(host, *variant, inputs, device)[2] for name, variant in variants.items()}  # warm-up
    totals = {name: [] for name in variants}
    per_step = {name: [] for name in variants}
    for _ in range(reps):
        for name, variant in variants.items():
            total, step_times, _ = _sample(host, *variant, inputs, device)
            totals[name].append(total)
            per_step[name].extend(step_times)
    medians = {}
    for name in variants:
        medians[name] = (statistics.median(totals[name]),
                         statistics.median(per_step[name]) if per_step[name] else None)
        reporter.emit({"bench": "sampling", "model": models.label, "variant": name, "device": device,
                       "steps": steps, "batch": 1, "resolution": resolution, "cfg": cfg, "reps": reps,
                       "dtype": models.describe()["unet_dtype"], "status": "ok",
                       "seconds_median": round(medians[name][0], 4),
                       "seconds_min": round(min(totals[name]), 4),
                       "seconds_per_step": round(medians[name][1], 5) if medians[name][1] else None,
                       "output_identical_to_plain": bool(torch.equal(outputs[name], outputs["plain"]))})
    base_total, base_step = medians["plain"]
    difference = (outputs["id_conditioning_w1"].float() - outputs["id_adapter_w1"].float()).abs().max()
    reporter.emit({"bench": "id_conditioning", "model": models.label, "device": device, "steps": steps,
                   "resolution": resolution, "status": "ok",
                   "seconds_node_first_run": round(conditioning_seconds[0], 5),
                   "seconds_node_median": round(statistics.median(conditioning_seconds[1:]), 5),
                   "max_abs_difference_to_id_adapter_w1": float(difference),
                   "latent_max_abs": float(outputs["id_adapter_w1"].float().abs().max()),
                   "note": "Apply ID-Adapter to Conditioning runs once per prompt, before sampling; its "
                           "sampled latent against the model patch's at weight 1, same seed"})
    for name in ("id_adapter_w1", "id_adapter_w0", "id_conditioning_w1"):
        total, step = medians[name]
        reporter.emit({"bench": "sampling_overhead", "model": models.label, "variant": name, "device": device,
                       "steps": steps, "resolution": resolution, "status": "ok",
                       "overhead_percent": round(100.0 * (total - base_total) / base_total, 2),
                       "overhead_percent_per_step": (round(100.0 * (step - base_step) / base_step, 2)
                                                     if step and base_step else None),
                       "note": "median KSampler call (and median step) against the plain model; "
                               "noise of the machine shows as small +/- values"})

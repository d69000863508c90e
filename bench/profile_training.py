"""Where one Learn ID Token step spends its time, measured on the node itself.

The node runs as in bench_training, with clocks put around its pieces from the outside for the
duration of the run (and always taken off again): the caption encode, the ID-Enhancer, the
ID-Adapter, the UNet forward, the backward, the optimiser, and the trainer's own bookkeeping.
The backward is split by gradient hooks on the adapter's output and input: the gradient reaches
the adapter's output when the UNet's backward is done, and its input (the text encoders' output)
when the adapter's is. Whatever the step took beyond the named pieces is host overhead (drawing
the batch, noising, the guider's condition handling, the loss, the regulariser).
The same run under torch.profiler lists the costliest operators.
On CUDA every clock synchronises, which slows the run but keeps the attribution honest.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import time

import measure
import torch
from bench_training import (
    REFERENCE_IMAGES,
    TrainingCase,
    make_identity,
    reference_images,
)
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

log = logging.getLogger(__name__)

TOP_OPS = 12


class _Timeline:
    """Durations and marks bucketed by training step (the node's progress bar opens each bucket)."""

    def __init__(self, device: str):
        self.device = device
        self.step = -1
        self.stamps: list[float] = []
        self.spent: list[collections.Counter] = []
        self.marks: list[dict] = []

    def progress(self, value, total, preview, node_id=None):
        self.stamps.append(measure.now(self.device))
        self.step = int(value)
        while len(self.spent) <= self.step:
            self.spent.append(collections.Counter())
            self.marks.append({})

    def add(self, label: str, seconds: float) -> None:
        if self.step >= 0:
            self.spent[self.step][label] += seconds

    def mark(self, label: str) -> None:
        if self.step >= 0:
            self.marks[self.step].setdefault(label, measure.now(self.device))


def _timed(timeline: _Timeline, label: str, function):
    def run(*args, **kwargs):
        start = measure.now(timeline.device)
        out = function(*args, **kwargs)
        timeline.add(label, measure.now(timeline.device) - start)
        return out
    return run


@contextlib.contextmanager
def _patched(owner, name: str, replacement):
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def instrumented(host, models, timeline: _Timeline):
    """Clocks on the node's pieces while the block runs."""
    import comfy.utils
    encoder_cls = host.pack_module("nodes.training.caption_encoder").CaptionEncoder
    adapter_cls = host.pack_module("idea.adapter").IDAdapter
    identity_cls = host.pack_module("idea.identity").IdentityEmbedding
    trainer_cls = host.pack_module("nodes.training.trainer").IDTokenTrainer
    adapter_forward = adapter_cls.__dict__["forward"]

    def adapter_with_marks(self, context, id_tokens, weight=1.0):
        start = measure.now(timeline.device)
        out = adapter_forward(self, context, id_tokens, weight)
        timeline.add("adapter_forward", measure.now(timeline.device) - start)
        if torch.is_grad_enabled() and out.requires_grad and out is not context:
            out.register_hook(lambda grad: timeline.mark("grad_at_adapter_output"))
            if context.requires_grad:
                context.register_hook(lambda grad: timeline.mark("grad_at_text_output"))
        return out

    original_grad = torch.autograd.grad

    def grad_with_marks(*args, **kwargs):
        timeline.mark("backward_start")
        out = _timed(timeline, "backward", original_grad)(*args, **kwargs)
        timeline.mark("backward_end")
        return out

    unet = models.model.model.diffusion_model
    unet_start = {}
    pre = unet.register_forward_pre_hook(lambda m, a: unet_start.update(t=measure.now(timeline.device)))
    post = unet.register_forward_hook(
        lambda m, a, out: timeline.add("unet_forward", measure.now(timeline.device) - unet_start["t"]))
    opt_start = {}
    opt_pre = register_optimizer_step_pre_hook(
        lambda opt, a, k: opt_start.update(t=measure.now(timeline.device)))
    opt_post = register_optimizer_step_post_hook(
        lambda opt, a, k: timeline.add("optimizer_step", measure.now(timeline.device) - opt_start["t"]))
    comfy.utils.set_progress_bar_global_hook(timeline.progress)
    try:
        with _patched(encoder_cls, "encode", _timed(timeline, "text_encoder_forward", encoder_cls.encode)), \
                _patched(identity_cls, "fused_tokens",
                         _timed(timeline, "enhancer_forward", identity_cls.fused_tokens)), \
                _patched(adapter_cls, "forward", adapter_with_marks), \
                _patched(trainer_cls, "_step", _timed(timeline, "trainer_step_call", trainer_cls._step)):
            torch.autograd.grad = grad_with_marks
            yield
    finally:
        torch.autograd.grad = original_grad
        comfy.utils.set_progress_bar_global_hook(None)
        for handle in (pre, post, opt_pre, opt_post):
            handle.remove()


def _node_inputs(host, models, case: TrainingCase, steps: int) -> dict:
    return {"model": models.model, "clip": models.clip, "vae": models.vae,
            "images": reference_images(REFERENCE_IMAGES, case.resolution, case.seed),
            "identity": make_identity(host, models.clip, case.seed),
            "name": f"bench_profile_{models.label}_{int(time.time() * 1000)}", "steps": steps,
            "batch_size": case.batch, "learning_rate": 0.0015, "seed": case.seed, "train_enhancer": "on",
            "resolution": case.resolution, "gradient_checkpointing": case.checkpointing[0],
            "precision": case.precision, "save_every": 0, "resume": False}


def _breakdown(timeline: _Timeline) -> tuple[dict, int]:
    """Mean milliseconds per step over every step but the first."""
    rows = []
    for k in range(1, len(timeline.stamps) - 1):
        spent, marks = timeline.spent[k], timeline.marks[k]
        step = timeline.stamps[k + 1] - timeline.stamps[k]
        row = {"step_total": step, "text_encoder_forward": spent["text_encoder_forward"],
               "enhancer_forward": spent["enhancer_forward"], "adapter_forward": spent["adapter_forward"],
               "unet_forward": spent["unet_forward"] - spent["adapter_forward"],
               "backward_total": spent["backward"], "optimizer_step": spent["optimizer_step"],
               "trainer_bookkeeping": spent["trainer_step_call"] - spent["backward"] - spent["optimizer_step"]}
        if {"backward_start", "grad_at_adapter_output", "grad_at_text_output", "backward_end"} <= set(marks):
            row["backward_unet"] = marks["grad_at_adapter_output"] - marks["backward_start"]
            row["backward_adapter"] = marks["grad_at_text_output"] - marks["grad_at_adapter_output"]
            row["backward_text_encoder_and_enhancer"] = marks["backward_end"] - marks["grad_at_text_output"]
        named = sum(row[key] for key in ("text_encoder_forward", "enhancer_forward", "adapter_forward",
                                         "unet_forward", "backward_total", "optimizer_step", "trainer_bookkeeping"))
        row["host_overhead_rest"] = step - named
        rows.append(row)
    if not rows:
        raise ValueError("the profile needs at least 3 steps (the first is not counted)")
    keys = rows[0].keys()
    return {key: round(1000 * sum(r.get(key, 0.0) for r in rows) / len(rows), 2) for key in keys}, len(rows)


def _top_ops(prof, device: str, steps: int) -> list[dict]:
    """The operators with the most self time over the whole node call, per training step."""
    sort_key = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, sort_key), reverse=True)[:TOP_OPS]
    return [{"op": e.key, "self_ms_per_step": round(getattr(e, sort_key) / 1000 / steps, 2),
             "calls_per_step": round(e.count / steps, 1)} for e in events]


def profile_node(host, reporter, models, case: TrainingCase, device: str, steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    timeline = _Timeline(device)
    inputs = _node_inputs(host, models, case, steps)
    with profile(activities=activities) as prof, instrumented(host, models, timeline):
        host.run("IDEA_LearnIDToken", **inputs)
    ms, counted = _breakdown(timeline)
    total = ms["step_total"]
    shares = {k: round(100 * v / total, 1) for k, v in ms.items() if k != "step_total"}
    record = {"bench": "profile_learn_id_token", "model": models.label, "device": device, "steps": steps,
              "batch": case.batch, "resolution": case.resolution, "precision": case.precision,
              "status": "ok", "steps_averaged": counted, "ms_per_step": ms, "percent_of_step": shares,
              "top_ops": _top_ops(prof, device, steps),
              "note": "unet_forward excludes the adapter; backward_* split by gradient hooks; "
                      "host_overhead_rest = step minus every named piece; top_ops over the whole node "
                      "call (setup included) divided by the steps; the profiler adds a little to every op"}
    return reporter.emit(record)

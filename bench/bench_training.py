"""Learn ID Token through the node, and the published recipe, timed on the same model architecture.

The node runs end to end as the executor runs it (host.run), so everything a user waits for counts:
the VAE encode, the host's guider, the per-step host work and the two saved files. Step times come
from the node's own progress bar (a global hook records when each step ends); the node turns the
loss into a Python float every step, so those clocks see the GPU's finished work.
"""
from __future__ import annotations

import gc
import logging
import traceback
from dataclasses import dataclass

import measure
import sd_models
import torch
from recipe_reference import PublishedRecipe

log = logging.getLogger(__name__)

WARMUP_STEPS = 2
FACE_DIM = 512
REFERENCE_IMAGES = 4


@dataclass
class TrainingCase:
    kind: str
    steps: int
    recipe_steps: int
    batch: int
    resolution: int
    checkpointing: tuple[str, ...]  # the node's gradient_checkpointing choices to run
    precision: str
    seed: int = 0


def reference_images(count: int, size: int, seed: int) -> torch.Tensor:
    """IMAGE [count, size, size, 3]: smooth random pictures (the content does not change the compute)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 8, 8, generator=gen)
    pictures = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return pictures.permute(0, 2, 3, 1).contiguous()


def make_identity(host, clip, seed: int):
    """An untrained identity for this CLIP through the ID-Enhancer node, from a random face embedding."""
    face_embedding = host.pack_module("idea.face_embedding").FaceEmbedding
    rows = torch.randn(1, FACE_DIM, generator=torch.Generator().manual_seed(seed))
    face = face_embedding.from_rows(rows, "bench-synthetic", torch.ones(1), torch.zeros(1, 5, 2), torch.zeros(1, 4))
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=face, clip=clip, num_tokens=2, seed=seed,
                           train_enhancer=True)
    return identity


class _StepClock:
    """Global progress-bar hook: the time each reported step value was reached."""

    def __init__(self, device: str):
        self.device, self.stamps = device, {}

    def __call__(self, value, total, preview, node_id=None):
        self.stamps[int(value)] = measure.now(self.device)

    def __enter__(self):
        import comfy.utils
        comfy.utils.set_progress_bar_global_hook(self)
        return self

    def __exit__(self, *exc):
        import comfy.utils
        comfy.utils.set_progress_bar_global_hook(None)


def _base_record(impl: str, models, case: TrainingCase, device: str, steps: int) -> dict:
    return {"bench": "learn_id_token", "impl": impl, "model": models.label, "device": device,
            "steps": steps, "batch": case.batch, "resolution": case.resolution, **models.describe()}


def _failure(record: dict, err: BaseException) -> dict:
    log.error("%s %s failed:\n%s", record["impl"], record["model"], traceback.format_exc())
    oom = isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err)
    return {**record, "status": "oom" if oom else "error", "error": f"{type(err).__name__}: {err}"[:500]}


def run_node(host, models, case: TrainingCase, device: str, checkpointing: str, run_id: str) -> dict:
    identity = make_identity(host, models.clip, case.seed)
    images = reference_images(REFERENCE_IMAGES, case.resolution, case.seed)
    record = {**_base_record("node", models, case, device, case.steps), "gradient_checkpointing": checkpointing}
    measure.reset_peak(device)
    resident = measure.resident_gib(device)
    try:
        with _StepClock(device) as clock:
            start = measure.now(device)
            trained, *_ = host.run("IDEA_LearnIDToken", model=models.model, clip=models.clip, vae=models.vae,
                                  images=images, identity=identity, name=f"bench_{run_id}", steps=case.steps,
                                  batch_size=case.batch, learning_rate=0.0015, seed=case.seed,
                                  train_enhancer="on", resolution=case.resolution,
                                  gradient_checkpointing=checkpointing, precision=case.precision,
                                  save_every=0, resume=False)
            end = measure.now(device)
    except Exception as err:  # noqa: BLE001  (one failed measurement must not hide the others)
        return _failure(record, err)
    stamps = [clock.stamps[i] for i in range(case.steps + 1)]
    stats = measure.step_stats(stamps, WARMUP_STEPS)
    setup = (stamps[0] - start) + (stats["seconds_first_step"] - stats["seconds_per_step"])
    training = trained.metadata["training"]
    return {**record, "status": "ok", "dtype": training["precision"],
            "gradient_checkpointing_on": training["gradient_checkpointing"],
            "train_enhancer": training["train_enhancer"], "seconds_total": round(end - start, 3),
            "seconds_before_first_step": round(stamps[0] - start, 3),
            "seconds_after_last_step": round(end - stamps[-1], 3), **stats,
            **measure.projection(setup + (end - stamps[-1]), stats["seconds_per_step"], case.steps, end - start),
            **measure.memory_fields(device, resident), "final_loss": training["losses"][-1]}


def _recipe_once(host, models, case: TrainingCase, device: str, batch: int, identity, images) -> dict:
    import comfy.model_management
    record = {**_base_record("published_recipe", models, case, device, case.recipe_steps), "batch": batch,
              "dtype": "fp32", "unet_dtype": "float32", "text_dtype": "float32"}  # converted by fp32_on
    comfy.model_management.unload_all_models()  # the host's copies step aside; the recipe holds fp32 ones
    gc.collect()
    comfy.model_management.soft_empty_cache()
    measure.reset_peak(device)
    resident = measure.resident_gib(device)
    losses = []
    try:
        with torch.inference_mode(False), torch.enable_grad(), sd_models.fp32_on(models, models.model.load_device):
            start = measure.now(device)  # the recipe's own setup counts, the conversion to fp32 not
            with PublishedRecipe(host, models, identity.clone(), images, batch, case.resolution,
                                 case.seed) as recipe:
                stamps = [measure.now(device)]
                for _ in range(case.recipe_steps):
                    losses.append(recipe.step())
                    stamps.append(measure.now(device))
                checks = recipe.table_checks()  # after the clock: not part of the recipe
    except Exception as err:  # noqa: BLE001  (reported as a line, the run goes on)
        return _failure(record, err)
    stats = measure.step_stats(stamps, WARMUP_STEPS)
    setup = (stamps[0] - start) + (stats["seconds_first_step"] - stats["seconds_per_step"])
    return {**record, "status": "ok", "seconds_total": round(stamps[-1] - start, 3),
            "seconds_before_first_step": round(stamps[0] - start, 3), **stats,
            **measure.projection(setup, stats["seconds_per_step"], case.recipe_steps, stamps[-1] - start),
            **measure.memory_fields(device, resident), "final_loss": losses[-1], "recipe_checks": checks}


def run_recipe(host, models, case: TrainingCase, device: str) -> dict:
    """The recipe at the node's batch; where that runs out of memory (fp32 SDXL at 1024 px), at half
    the batch and so on, with the batches that did not fit listed, so a line always comes back."""
    identity = make_identity(host, models.clip, case.seed)
    images = reference_images(REFERENCE_IMAGES, case.resolution, case.seed)
    batch, too_big = case.batch, []
    while True:
        result = _recipe_once(host, models, case, device, batch, identity, images)
        if result["status"] != "oom" or batch == 1:
            return {**result, "out_of_memory_at_batch": too_big}
        too_big.append(batch)
        log.warning("published recipe out of memory at batch %d on %s; trying %d", batch, models.label, batch // 2)
        batch //= 2


def speedup(node: dict, recipe: dict) -> dict:
    """Recipe time over node time, per steady step and for the (projected) 320 steps."""
    out = {"bench": "learn_id_token_speedup", "model": node["model"], "device": node["device"],
           "gradient_checkpointing": node["gradient_checkpointing"]}
    if node.get("status") != "ok" or recipe.get("status") != "ok":
        return {**out, "status": "incomplete"}
    per_sample = (recipe["seconds_per_step"] / recipe["batch"]) / (node["seconds_per_step"] / node["batch"])
    if recipe["batch"] != node["batch"]:
        return {**out, "status": "ok", "recipe_batch": recipe["batch"], "node_batch": node["batch"],
                "per_sample": round(per_sample, 2),
                "note": "the recipe ran at a smaller batch (out of memory at the node's); compare per sample"}
    return {**out, "status": "ok", "batch": node["batch"],
            "per_step": round(recipe["seconds_per_step"] / node["seconds_per_step"], 2),
            "per_sample": round(per_sample, 2),
            "for_320_steps": round(recipe["projected_320_steps_seconds"] / node["projected_320_steps_seconds"], 2),
            "note": "recipe fp32 per the released code; node at its own precision; 320-step figures "
                    "are projected unless both ran 320 steps"}


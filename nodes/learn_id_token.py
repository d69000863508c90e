"""Learn ID Token: train the identity tokens, the ID-Adapter and the ID-Enhancer on the user's model.

The node's sixteen inputs are grouped once, at the top of `execute`, into what each part of a run
needs: the wired inputs (photos, identity, checkpoint), the recipe (steps, batch, rate, seed, ...)
and the saving choices (name, save_every, resume). The loop itself is training/trainer.py; the files
it writes are training/run_files.py.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from ..idea.identity import IdentityEmbedding
from ..idea.training_recipe import BASE_LEARNING_RATE, TrainSettings, default_resolution
from .host.model_arch import check_identity_fits
from .host.text_encoders import check_clip_fits, check_clip_layers
from .schema.search_words import search_aliases
from .training import run_files
from .training.checkpointing import CHECKPOINTING, resolve_checkpointing
from .training.errors import TrainingOutOfMemoryError, TrainingStoppedError
from .training.loss_plot import loss_curve_image
from .training.precision import PRECISIONS, resolve_precision
from .training.reference_latents import reference_latents
from .training.trainer import IDTokenTrainer, NonFiniteLoss, TrainingState, prediction_type
from .types import IdentityType

log = logging.getLogger(__name__)
ENHANCER_CHOICES = ("from identity", "on", "off")


def snapshot(state: TrainingState):
    """A detached CPU copy of the identity with its training record, ready to save or return."""
    identity = state.identity.clone()
    for key in identity.token_vectors:
        identity.token_vectors[key] = identity.token_vectors[key].cpu()
        identity.initial_vectors[key] = identity.initial_vectors[key].cpu()
    identity.anchor, identity.face_mean = identity.anchor.cpu(), identity.face_mean.cpu()
    identity.enhancer.cpu().requires_grad_(False)
    identity.adapter.cpu().requires_grad_(False)
    identity.metadata = {**identity.metadata, "training": {
        **state.settings.as_metadata(), "steps_done": state.steps_done, "steps_total": state.settings.steps,
        "losses": [round(v, 6) for v in state.losses]}}
    return identity


@dataclass(frozen=True)
class WiredInputs:
    """What the node's sockets bring: the reference faces with their identity, and the checkpoint."""
    images: torch.Tensor  # IMAGE [N, H, W, C], aligned by FaceID Embed
    identity: IdentityEmbedding  # from ID-Enhancer or Load Identity; never modified (a clone is trained)
    model: Any  # the host's ModelPatcher
    clip: Any  # the host's CLIP
    vae: Any  # the host's VAE


@dataclass(frozen=True)
class RecipeInputs:
    """The recipe as the node's widgets set it; "auto", "from identity" and resolution 0 are resolved
    against the model, device and identity by `train_settings`."""
    steps: int
    batch_size: int
    learning_rate: float
    seed: int
    train_enhancer: str  # one of ENHANCER_CHOICES
    resolution: int  # 0: by base model
    gradient_checkpointing: str  # one of CHECKPOINTING
    precision: str  # one of PRECISIONS

    def enhancer_switch(self, identity: IdentityEmbedding) -> bool:
        """Whether the ID-Enhancer trains: the node's choice, or the ID-Enhancer node's switch."""
        if self.train_enhancer == "from identity":
            return identity.train_enhancer
        return self.train_enhancer == "on"

    def train_settings(self, train_enhancer: bool, resolution: int, arch: str,
                       device: torch.device) -> TrainSettings:
        return TrainSettings(steps=self.steps, batch_size=self.batch_size, learning_rate=self.learning_rate,
                             seed=self.seed, train_enhancer=train_enhancer, resolution=resolution,
                             precision=resolve_precision(self.precision, device),
                             gradient_checkpointing=resolve_checkpointing(self.gradient_checkpointing, arch))


@dataclass(frozen=True)
class SavingInputs:
    """Where and when the run is saved (training/run_files.py says what is written)."""
    name: str  # file and prompt name: embedding:NAME
    save_every: int  # also save a resumable partial identity every N steps; 0: only at the end and on interrupt
    resume: bool  # continue the identity saved under name


def save_run(trainer: IDTokenTrainer, identity: IdentityEmbedding, paths: run_files.IdentityPaths) -> None:
    """The run's files for `identity`, with the optimiser's state of the trainer that made it."""
    run_files.save_all(identity, paths, trainer.optimizer, trainer.named_params)


class AfterEachStep:
    """The trainer's on_step: the host's progress bar follows the steps, and every save_every steps a
    resumable partial identity is saved. The trainer hands itself in at each call, so this object is
    made before the trainer without referring to it."""

    def __init__(self, paths: run_files.IdentityPaths, save_every: int, steps: int, done: int):
        self.paths, self.save_every, self.steps = paths, save_every, steps
        self.progress = comfy.utils.ProgressBar(steps)
        self.progress.update_absolute(done, steps)

    def __call__(self, trainer: IDTokenTrainer) -> None:
        done = trainer.state.steps_done
        self.progress.update_absolute(done, self.steps)
        if self.save_every and done % self.save_every == 0 and done < self.steps:
            save_run(trainer, snapshot(trainer.state), self.paths)


def losses_before(start: IdentityEmbedding, done: int) -> list[float]:
    """The recorded losses of the `done` steps a resumed identity has had (nan where none was kept)."""
    recorded = start.metadata.get("training", {}).get("losses", []) if done else []
    return (list(recorded) + [float("nan")] * done)[:done]


def train(wired: WiredInputs, recipe: RecipeInputs, saving: SavingInputs) -> tuple[IdentityEmbedding, list[float]]:
    """Check, encode the references once, train (or resume) and save; -> (trained identity, losses)."""
    identity, model, clip = wired.identity, wired.model, wired.clip
    paths = run_files.paths_for(saving.name)
    found = check_identity_fits(identity, model)
    layout = check_clip_fits(identity, clip)
    resuming = saving.resume and paths.identity.exists()
    if not resuming:
        run_files.check_fresh_start(paths)
    resolution = recipe.resolution or default_resolution(found.arch, prediction_type(model.model))
    log.info("training '%s' on %d reference image(s) at %d px, framing %s", saving.name, wired.images.shape[0],
             resolution, identity.framing or "not recorded")
    cached_latents = reference_latents(wired.vae, wired.images, resolution)  # no gradient: encoded once, here
    with torch.inference_mode(False), torch.enable_grad():
        if resuming:
            start = run_files.load_for_resume(paths, identity.arch, identity.ctx_dim)
            check_clip_layers(start, clip, layout)
        else:
            start = identity.clone()
        start.train_enhancer = recipe.enhancer_switch(start)
        settings = recipe.train_settings(start.train_enhancer, resolution, found.arch, model.load_device)
        done = run_files.steps_done(start) if resuming else 0
        state = TrainingState(start, settings, losses=losses_before(start, done))
        on_step = AfterEachStep(paths, saving.save_every, settings.steps, done)
        trainer = IDTokenTrainer(model, clip, state, cached_latents.clone(), on_step=on_step)
        if resuming and done < settings.steps:
            saved_state = run_files.saved_optimizer_state(paths)
            if saved_state is not None:
                trainer.restore_optimizer(saved_state)
        try:
            trainer.run()
        except comfy.model_management.InterruptProcessingException:
            if state.steps_done > done:
                save_run(trainer, snapshot(state), paths)
                log.info("training interrupted after %d steps; resume it with resume on", state.steps_done)
            raise
        except NonFiniteLoss as err:
            kept = f" The last good save stays at {paths.identity}." if paths.identity.exists() else ""
            raise TrainingStoppedError(f"training of '{saving.name}' stopped: {err}.{kept} Lower the learning "
                                       "rate, or use precision fp32 or bf16.") from err
        except torch.OutOfMemoryError as err:
            raise TrainingOutOfMemoryError(
                f"out of memory while training '{saving.name}' at batch size {recipe.batch_size}, resolution "
                f"{settings.resolution}, precision {settings.precision}, gradient checkpointing "
                f"{'on' if settings.gradient_checkpointing else 'off'}: lower batch_size, turn "
                "gradient_checkpointing on, or use precision bf16/fp16.") from err
        final = snapshot(state)
        if state.steps_done > done:  # a reused, already finished identity is not written again
            save_run(trainer, final, paths)
    return final, state.losses


class LearnIDToken(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_LearnIDToken",
            display_name="Learn ID Token (Textual Inversion)",
            category="ID-EA",
            **search_aliases("textual inversion", "train embedding", "train face", "train person",
                             "LoRA alternative", "identity", "face id", "PuLID", "InstantID", "IPAdapter face",
                             "dreambooth"),
            is_output_node=True,
            description="Trains the identity (two token vectors, the ID-Adapter and the ID-Enhancer) on your "
                        "own checkpoint in ~320 steps, and saves it as models/embeddings/NAME.safetensors "
                        "(use embedding:NAME in any prompt) and models/idea/NAME.safetensors (Load Identity).",
            inputs=[
                # the face side first, the checkpoint below: in a workflow the photos' wires come in
                # from above and the checkpoint's from below without crossing (as into ID-Enhancer)
                io.Image.Input("images", tooltip="Reference images: the aligned faces from FaceID Embed (its framing "
                                                 "input sets how the face fills them)."),
                IdentityType.Input("identity", tooltip="From ID-Enhancer (or Load Identity to train further)."),
                io.Model.Input("model", tooltip="The checkpoint's MODEL you will generate with (SD1.x, SD2.x, SDXL; "
                                                "FLUX.1 experimental, not yet measured on a GPU)."),
                io.Clip.Input("clip", tooltip="The same checkpoint's CLIP (the one given to ID-Enhancer)."),
                io.Vae.Input("vae", tooltip="The checkpoint's VAE, to encode the reference images once."),
                io.String.Input("name", default="my_person",
                                tooltip="File and prompt name: embedding:NAME. Existing files are never "
                                        "overwritten (use resume to continue one)."),
                io.Int.Input("steps", default=320, min=1, max=10000, tooltip="Optimiser steps (the paper: 320)."),
                io.Int.Input("batch_size", default=8, min=1, max=64,
                             tooltip="Samples per step (the paper: 8). Lower it if you run out of memory."),
                io.Float.Input("learning_rate", default=BASE_LEARNING_RATE, min=1e-6, max=1.0, step=0.0001,
                               tooltip="Per-sample rate; the optimiser uses it times the batch size."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF, control_after_generate=False,
                             tooltip="Seeds the draw of images, captions, timesteps and noise."),
                io.Combo.Input("train_enhancer", options=list(ENHANCER_CHOICES), default="from identity",
                               tooltip="Train the ID-Enhancer too (on), keep it at its seeded start as the "
                                       "authors' code does (off), or follow the ID-Enhancer node's switch."),
                io.Int.Input("resolution", default=0, min=0, max=2048, step=64,
                             tooltip="Training resolution; 0 = by base model (512 SD1.x and SD2.x-base, "
                                     "768 SD2.x 768-v, 1024 SDXL, 512 FLUX.1)."),
                io.Combo.Input("gradient_checkpointing", options=list(CHECKPOINTING), default="auto",
                               tooltip="Recompute activations to save memory (auto: on for SDXL and FLUX.1)."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="Compute precision. auto: bf16 on CUDA GPUs that support it (NVIDIA "
                                       "Ampere and newer), fp16 on older CUDA GPUs, fp32 on the CPU, Apple "
                                       "MPS and other devices. The authors' released run was fp32: choose "
                                       "fp32 to reproduce it (slower, more memory)."),
                io.Int.Input("save_every", default=0, min=0, max=10000,
                             tooltip="Also save a resumable partial identity every N steps (0: only at the end "
                                     "and when interrupted)."),
                io.Boolean.Input("resume", default=False,
                                 tooltip="Continue the identity saved under NAME up to the step count (an "
                                         "identity already trained that far is reused as it is); with no "
                                         "saved identity of that name, a new one is trained."),
            ],
            outputs=[
                IdentityType.Output("trained_identity", display_name="identity",
                                    tooltip="The trained identity, for Apply ID-Adapter."),
                io.Image.Output("loss_curve", display_name="loss_curve", tooltip="The training loss per step."),
                io.Clip.Output("clip_for_prompts", display_name="clip",
                               tooltip="The same CLIP, handed on once training has saved embedding:NAME: "
                                       "prompts encoded from it are encoded after training, so they find "
                                       "the new embedding in the same run."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, vae, images, identity, name, steps, batch_size, learning_rate, seed,
                train_enhancer, resolution, gradient_checkpointing, precision, save_every, resume) -> io.NodeOutput:
        # The host hands the inputs over by name (the v3 contract); this is the one place they are grouped.
        wired = WiredInputs(images=images, identity=identity, model=model, clip=clip, vae=vae)
        recipe = RecipeInputs(steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                              train_enhancer=train_enhancer, resolution=resolution,
                              gradient_checkpointing=gradient_checkpointing, precision=precision)
        saving = SavingInputs(name=name, save_every=save_every, resume=resume)
        trained, losses = train(wired, recipe, saving)
        return io.NodeOutput(trained, loss_curve_image(losses), clip)

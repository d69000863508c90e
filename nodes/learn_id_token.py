"""Learn ID Token: train the identity tokens, the ID-Adapter and the ID-Enhancer on the user's model."""
from __future__ import annotations

import logging

import torch

import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from ..idea.training_recipe import BASE_LEARNING_RATE, TrainSettings, default_resolution
from .host.model_arch import check_identity_fits
from .host.text_encoders import check_clip_fits, check_clip_layers
from .schema.search_words import search_aliases
from .training import run_files as identity_store
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
                IdentityType.Output("trained_identity", display_name="identity", tooltip="The trained identity, for Apply ID-Adapter."),
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
        paths = identity_store.paths_for(name)
        found = check_identity_fits(identity, model)
        layout = check_clip_fits(identity, clip)
        device = model.load_device
        resuming = resume and paths.identity.exists()
        if not resuming:
            identity_store.check_fresh_start(paths)
        resolution = resolution or default_resolution(found.arch, prediction_type(model.model))
        log.info("training '%s' on %d reference image(s) at %d px, framing %s", name, images.shape[0], resolution,
                 identity.framing or "not recorded")
        cached_latents = reference_latents(vae, images, resolution)  # no gradient: encoded once, here
        with torch.inference_mode(False), torch.enable_grad():
            if resuming:
                start = identity_store.load_for_resume(paths, identity.arch, identity.ctx_dim)
                check_clip_layers(start, clip, layout)
            else:
                start = identity.clone()
            if train_enhancer != "from identity":
                start.train_enhancer = train_enhancer == "on"
            settings = TrainSettings(steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                                     train_enhancer=start.train_enhancer,
                                     resolution=resolution,
                                     precision=resolve_precision(precision, device),
                                     gradient_checkpointing=resolve_checkpointing(gradient_checkpointing,
                                                                                  found.arch))
            done = identity_store.steps_done(start) if resuming else 0
            recorded = start.metadata.get("training", {}).get("losses", []) if resuming else []
            prior_losses = (list(recorded) + [float("nan")] * done)[:done]
            latents = cached_latents.clone()
            state = TrainingState(start, settings, losses=prior_losses)
            progress = comfy.utils.ProgressBar(steps)
            progress.update_absolute(done, steps)

            def on_step(current: TrainingState) -> None:
                progress.update_absolute(current.steps_done, steps)
                if save_every and current.steps_done % save_every == 0 and current.steps_done < steps:
                    save(snapshot(current))

            def save(identity_now) -> None:
                identity_store.save_all(identity_now, paths, trainer.optimizer, trainer.named_params)

            trainer = IDTokenTrainer(model, clip, state, latents, on_step=on_step)
            if resuming and done < steps:
                saved_state = identity_store.saved_optimizer_state(paths)
                if saved_state is not None:
                    trainer.restore_optimizer(saved_state)
            try:
                trainer.run()
            except comfy.model_management.InterruptProcessingException:
                if state.steps_done > done:
                    save(snapshot(state))
                    log.info("training interrupted after %d steps; resume it with resume on", state.steps_done)
                raise
            except NonFiniteLoss as err:
                kept = f" The last good save stays at {paths.identity}." if paths.identity.exists() else ""
                raise TrainingStoppedError(f"training of '{name}' stopped: {err}.{kept} Lower the learning rate, "
                                           "or use precision fp32 or bf16.") from err
            except torch.OutOfMemoryError as err:
                raise TrainingOutOfMemoryError(
                    f"out of memory while training '{name}' at batch size {batch_size}, resolution "
                    f"{settings.resolution}, precision {settings.precision}, gradient checkpointing "
                    f"{'on' if settings.gradient_checkpointing else 'off'}: lower batch_size, turn "
                    "gradient_checkpointing on, or use precision bf16/fp16.") from err
            final = snapshot(state)
            if state.steps_done > done:  # a reused, already finished identity is not written again
                save(final)
        return io.NodeOutput(final, loss_curve_image(state.losses), clip)

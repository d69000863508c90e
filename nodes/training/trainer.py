"""The Learn ID Token loop, run inside the host's own sampling machinery.

Why through the host: a custom comfy.samplers.Sampler handed to the normal guider (as the host's
TrainLoraNode does) makes every forward go through apply_model with the model's patches and
wrappers, including the ID-Adapter attached by the same code Apply ID-Adapter uses. So the tokens
are trained under exactly the conditioning they are sampled with.

The loop is called back from inside the sampler (_LoopSampler.sample), and the adapter it trains is
called by the model's forward, which cannot be handed Z: the step's Z is held in a StepTokens for the
span of one step (set before its forward, cleared after its optimiser step) and read there.

Only what is trained gets a gradient: torch.autograd.grad asks for the trainable tensors alone, so
no UNet or text-encoder weight gradient is ever computed or stored (and the shared model is never
touched).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Callable

import torch

import comfy.conds
import comfy.model_management
import comfy.samplers
from comfy_extras.nodes_custom_sampler import Guider_Basic

from ...idea.archs import base_arch
from ...idea.errors import IDEAError, InputError
from ...idea.flux_recipe import TRAINING_GUIDANCE, flow_sigmas
from ...idea.identity import IdentityEmbedding
from ...idea.regulariser import MahalanobisRegulariser
from ...idea.training_state import restore_optimizer_state
from ...idea.training_recipe import (REGULARISER_WEIGHT, TrainSettings, denoising_loss, draw_step,
                                     make_optimizer)
from ..host.model_arch import read_model_arch
from ..host.text_encoders import read_clip
from ..patching.adapter_patch import attach_id_adapter
from .autograd_weights import autograd_usable, host_training_mode
from .caption_encoder import CaptionEncoder, sdpa_for_backward
from .checkpointing import gradient_checkpointing
from .flux_autograd import t5_layers_recomputed, training_forward_guard
from .precision import autocast_for

log = logging.getLogger(__name__)

# loss_fn(x0_pred, x0, sigma, noise, xt, caption_indices) -> per-sample loss [B]; default: the recipe's
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[int]], torch.Tensor]


# FLUX: FLUX.1-dev's rectified flow with the host's shifted schedule; FLOW: the same prediction with a
# plain discrete flow schedule (FLUX.1-schnell).
PREDICTIONS = {"EPS": "eps", "V_PREDICTION": "v", "FLUX": "flow", "FLOW": "flow"}


class NonFiniteLoss(IDEAError, RuntimeError):
    """The loss or a gradient became inf or nan; the step was not applied."""


def prediction_type(base_model) -> str:
    """eps, v or flow, from the host's model type (SD1.x/SD2-base/SDXL: eps; SD2 768-v: v; FLUX.1:
    flow)."""
    name = base_model.model_type.name
    if name not in PREDICTIONS:
        raise InputError(f"Learn ID Token supports epsilon-, v- and flow-prediction models; this one is {name}. "
                         "Train on an SD1.x, SD2.x, SDXL or FLUX.1 checkpoint.")
    return PREDICTIONS[name]


@dataclass
class TrainingState:
    identity: IdentityEmbedding  # trainable, on the training device
    settings: TrainSettings
    losses: list[float] = field(default_factory=list)  # one per step done, from step 1 (resumes included)

    @property
    def steps_done(self) -> int:
        return len(self.losses)


def step_model_conds(base_model, base_conds: dict, context: torch.Tensor, pooled: torch.Tensor | None,
                     latent: torch.Tensor) -> dict:
    """The model conditions of one training call, from this step's captions with the current vectors.

    c_crossattn is the captions' context, in the cond class the model itself made it (CONDCrossAttn
    for SD, CONDRegular for FLUX). Where the model has a `y` (SDXL: CLIP-G's pooled output plus the
    size embedding; FLUX.1: CLIP-L's pooled output), it is rebuilt the way the host's sampler builds it
    at inference, by the model's own encode_adm with the latent's size in pixels, from this step's
    pooled output, so the pooled vector the model sees follows caption and step and carries a gradient
    to the pooled encoder's tokens."""
    cond_class = type(base_conds["c_crossattn"]) if "c_crossattn" in base_conds else comfy.conds.CONDCrossAttn
    conds = {**base_conds, "c_crossattn": cond_class(context)}
    if "y" in base_conds and pooled is not None:
        adm = base_model.encode_adm(pooled_output=pooled, width=latent.shape[3] * 8, height=latent.shape[2] * 8)
        conds["y"] = comfy.conds.CONDRegular(adm)
    return conds


class StepTokens:
    """Z (the fused identity tokens) of the training step in progress, for the adapter attached for
    training: the wrapper calls this object at every model call, and it answers with the Z the loop set
    for this step.

    Lifetime: `begin` at each step, before its forward (Z recomputed with gradients from the current
    vectors); `end` after that step's optimiser step, so no finished step's graph stays referenced.
    Between steps there is no Z, and a model call there (none is made) would be refused."""

    def __init__(self):
        self._tokens: torch.Tensor | None = None

    def begin(self, tokens: torch.Tensor) -> None:
        self._tokens = tokens

    def end(self) -> None:
        self._tokens = None

    def __call__(self) -> torch.Tensor:
        if self._tokens is None:
            raise RuntimeError("the training adapter was called outside a training step (no Z is set)")
        return self._tokens


class _LoopSampler(comfy.samplers.Sampler):
    """Hands the guider's prepared model to the trainer; returns an unchanged latent."""

    def __init__(self, trainer: "IDTokenTrainer"):
        self.trainer = trainer

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        self.trainer.loop(model_wrap, extra_args, latent_image)
        return torch.zeros_like(latent_image)


class IDTokenTrainer:
    def __init__(self, model, clip, state: TrainingState, latents: torch.Tensor,
                 loss_fn: LossFn | None = None, on_step: Callable[[IDTokenTrainer], None] | None = None):
        """on_step: called after each step with this trainer (its state, optimiser and trainable
        tensors: what a save needs)."""
        self.model, self.clip, self.state, self.latents = model, clip, state, latents
        self.loss_fn = loss_fn
        self.on_step = on_step
        self.layout = read_clip(clip)
        self.encoder = CaptionEncoder(clip, self.layout)
        self.device = model.load_device
        self.step_tokens = StepTokens()  # Z of the step in progress: set and cleared in loop()
        identity = state.identity
        identity.token_vectors = {k: v.to(self.device) for k, v in identity.token_vectors.items()}
        identity.initial_vectors = {k: v.to(self.device) for k, v in identity.initial_vectors.items()}
        identity.anchor, identity.face_mean = identity.anchor.to(self.device), identity.face_mean.to(self.device)
        identity.enhancer.to(self.device)
        identity.adapter.to(self.device)
        self.named_params = identity.make_trainable()
        self.params = list(self.named_params.values())
        # The released code's pinv drops every direction outside the span of the initial vectors
        # (docs/method.md, component 5); penalise_off_span=False keeps that behaviour.
        self.regularisers = {k: MahalanobisRegulariser(v, weight=REGULARISER_WEIGHT, penalise_off_span=False)
                             for k, v in identity.initial_vectors.items()}
        self.optimizer = make_optimizer(self.params, state.settings)

    def restore_optimizer(self, tensors: dict[str, torch.Tensor]) -> None:
        """Continue with the optimiser's saved state (a resumed run), so it steps as if never stopped."""
        fresh = restore_optimizer_state(self.optimizer, self.named_params, tensors)
        if fresh:
            log.warning("no saved optimiser state for %s: they start with a fresh one", ", ".join(fresh))

    def run(self) -> TrainingState:
        """Train from state.steps_done to settings.steps through the guider; returns the state."""
        settings = self.state.settings
        if self.state.steps_done >= settings.steps:
            return self.state
        arch = base_arch(self.state.identity.arch)
        patched = attach_id_adapter(self.model, self.state.identity.adapter, self.step_tokens,
                                    apply_to="cond", copy_adapter=False, key="idea_id_adapter.training",
                                    window_tokens=arch.adapter_window)
        with torch.no_grad():
            self.encoder.prepare()
            context, pooled = self.encoder.encode([0], self.state.identity.token_vectors)
        extra = {"pooled_output": pooled} if pooled is not None else {}
        extra.update(self._flux_inputs(patched))
        guider = Guider_Basic(patched)
        guider.set_conds([[context.detach(), extra]])
        comfy.model_management.load_models_gpu([patched, self.clip.patcher])
        t5 = next((h.encoder for h in self.layout.encoders if h.key == "t5xxl"), None)
        with gradient_checkpointing(patched, settings.gradient_checkpointing), \
                t5_layers_recomputed(t5, settings.gradient_checkpointing and t5 is not None,
                                     functools.partial(sdpa_for_backward, self.device)), \
                autograd_usable(patched.model, self.clip.cond_stage_model), host_training_mode():
            guider.sample(torch.zeros_like(self.latents), self.latents, _LoopSampler(self),
                          torch.ones(2), seed=settings.seed)
        return self.state

    def _flux_inputs(self, patched) -> dict:
        """FLUX.1-dev is guidance-distilled: its guidance strength is a model input, so training sets
        one (idea/flux_recipe.py) and records it, with the schedule's shift, in the identity."""
        if read_model_arch(self.model).arch != "flux":
            return {}
        shift = getattr(patched.get_model_object("model_sampling"), "shift", None)
        self.state.identity.metadata["flux_training"] = {
            "guidance": TRAINING_GUIDANCE, "schedule_shift": None if shift is None else float(shift),
            "timesteps": "uniform over the model's sigma table", "loss": "flow matching (u = noise - x0) MSE"}
        return {"guidance": TRAINING_GUIDANCE}

    def loop(self, model_wrap, extra_args, latent_image: torch.Tensor) -> None:
        """The steps, called back by the host's sampler (through _LoopSampler) with its prepared model."""
        settings, identity = self.state.settings, self.state.identity
        sampling = model_wrap.inner_model.model_sampling
        prediction = prediction_type(model_wrap.inner_model)
        base_cond = model_wrap.conds["positive"][0]
        self.encoder.prepare()
        device = latent_image.device
        for step in range(self.state.steps_done, settings.steps):
            comfy.model_management.throw_exception_if_processing_interrupted()
            draw = draw_step(settings.seed, step, settings.batch_size, latent_image.shape[0])
            x0 = latent_image[draw.sample_indices.to(device)]
            if prediction == "flow":  # uniform over the model's own (shifted) schedule: idea/flux_recipe.py
                sigma = flow_sigmas(sampling.sigmas, draw.timesteps).to(device=device, dtype=torch.float32)
            else:
                timesteps = (draw.timesteps * 1000).floor().clamp(max=999)
                sigma = sampling.sigma(timesteps).to(device=device, dtype=torch.float32)
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(draw.noise_seed)).to(x0)
            xt = sampling.noise_scaling(sigma, noise, x0)
            with autocast_for(self.device, settings.precision):
                captions = draw.caption_indices.tolist()
                context, pooled = self.encoder.encode(captions, identity.token_vectors, device)
                self.step_tokens.begin(identity.fused_tokens())  # read by the adapter in model_wrap below
                model_conds = step_model_conds(model_wrap.inner_model, base_cond["model_conds"], context, pooled, x0)
                model_wrap.conds["positive"] = [{**base_cond, "model_conds": model_conds}]
                with training_forward_guard(self.model):
                    x0_pred = model_wrap(xt, sigma, **extra_args)
                per_sample = (self.loss_fn(x0_pred.float(), x0.float(), sigma, noise, xt, captions) if self.loss_fn
                              else denoising_loss(x0_pred.float(), x0.float(), sigma, prediction,
                                                  float(getattr(sampling, "sigma_data", 1.0))))
                loss = per_sample.mean()
            regularisation = sum(reg(identity.token_vectors[k]) for k, reg in self.regularisers.items())
            total = loss + regularisation
            if not torch.isfinite(total):
                raise NonFiniteLoss(f"the loss became {total.item()} at step {step + 1}")
            self._step(total)
            self.state.losses.append(float(loss.detach()))
            self.step_tokens.end()
            if self.on_step is not None:
                self.on_step(self)

    def _step(self, total: torch.Tensor) -> None:
        scale = 1024.0 if self.state.settings.precision == "fp16" else 1.0
        grads = torch.autograd.grad(total * scale, self.params, allow_unused=True)
        for param, grad in zip(self.params, grads):
            param.grad = torch.zeros_like(param) if grad is None else grad / scale
        # one device sync for all gradients instead of one per tensor
        if not bool(torch.stack([torch.isfinite(p.grad).all() for p in self.params]).all()):
            raise NonFiniteLoss("a gradient became inf or nan")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

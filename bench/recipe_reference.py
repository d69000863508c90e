"""The published ID-EA training recipe, reimplemented step for step, as the baseline to time against.

What the authors' released script does every step, and so does this (docs/method.md, "Training recipe"
and "Corrections to the released code"):
- everything in fp32;
- the VAE encodes the batch of randomly flipped reference images every step (posterior sampled);
- the new tokens are rows appended to each encoder's token-embedding table; the WHOLE table requires
  grad and is handed to AdamW, and after each step every other row is restored from a copy (the
  Textual Inversion way), so a dense [vocabulary, D] gradient and Adam state are paid every step;
- the UNet's cross-attention to_k/to_v weights require grad: their gradients are computed, never used;
- the regulariser's Sigma^-1 is a D x D pseudo-inverse recomputed every step;
- the ID-Enhancer stays at its seeded start (frozen, re-run every step), the ID-Adapter trains;
- DDPM noising with uniform integer timesteps, epsilon (or v) MSE, loss.item() every step.
It runs on the same host modules as the node (UNet, text encoders, VAE) but calls them directly.
Left out, both of which would only make the recipe slower: the per-step image loading/resizing on
the CPU and the face-recognition forward (no ArcFace model here).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Self

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

BASE_LEARNING_RATE = 0.0015  # per sample, scaled by the batch (released command)
ADAM = {"betas": (0.9, 0.999), "weight_decay": 1e-2, "eps": 1e-7}
REGULARISER_WEIGHT = 8e-4
COVARIANCE_EPS = 2e-5
DISTANCE_FLOOR = 1e-8
TIMESTEPS = 1000


def _clone(tensor):
    return tensor.clone()


def _same(tensor):
    return tensor


@dataclass
class _Table:
    """One encoder's token-embedding table with the new rows appended, trained whole."""
    module: torch.nn.Module  # the encoder's token embedding
    original: torch.nn.Parameter  # its own weight, put back afterwards
    table: torch.nn.Parameter  # [V + K, D], requires grad
    snapshot: torch.Tensor  # the table as it started (rows restored from here)
    keep: torch.Tensor  # bool [V + K]: rows that must not change
    new_ids: list[int]
    initial: torch.Tensor  # [K, D] starting values of the new rows


def _text_attention(device: torch.device):
    """CUDA only: backward through the host's CLIP attention fails in PyTorch's memory-efficient
    kernel ("attn_bias is not correctly aligned", the 77x77 causal mask); the text encoder is run with
    the other kernels, the UNet keeps the default."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH])


class PublishedRecipe:
    """Use as a context manager (it swaps the embedding tables in and restores every module);
    step() runs one training step and returns the denoising loss."""

    def __init__(self, host, models, identity, images: torch.Tensor, batch: int, resolution: int, seed: int):
        self.host, self.models = host, models
        self.batch, self.resolution = batch, resolution
        self.base = models.model.model
        self.device = models.model.load_device
        self.unet = self.base.diffusion_model
        self.vae = models.vae.first_stage_model
        self.text = models.clip.cond_stage_model
        self.layout = host.pack_module("nodes.host.text_encoders").read_clip(models.clip)
        recipe = host.pack_module("idea.training_recipe")
        self.templates = [recipe.caption_parts(t) for t in recipe.CAPTION_TEMPLATES]
        self.identity = identity  # a clone made outside inference mode
        self.images = images
        self.seed = seed
        self.tables: dict[str, _Table] = {}
        self._flags: list[tuple[torch.nn.Parameter, bool]] = []
        self.checks: dict[str, bool] = {}  # what makes it the published recipe, seen on the first step

    # ---- setup and restore ----
    def __enter__(self) -> Self:
        device = self.device
        for module in (self.unet, self.text, self.vae):
            for p in module.parameters():
                self._flags.append((p, p.requires_grad))
                p.requires_grad_(False)
        if any(p.dtype != torch.float32 for p, _ in self._flags):
            raise ValueError("the published recipe runs in fp32; enter sd_models.fp32_on(models) first")
        self.unused_grads = [m.weight for name, m in self.unet.named_modules()
                             if name.endswith(("attn2.to_k", "attn2.to_v"))]
        for weight in self.unused_grads:
            weight.requires_grad_(True)
        self.text.reset_clip_options()
        if self.models.clip.layer_idx is not None:
            self.text.set_clip_options({"layer": self.models.clip.layer_idx})
        for handle in self.layout.encoders:
            self.tables[handle.key] = self._install_table(handle)
        self.tokens = {h.key: [h.token_list(h.name_token_ids(before) + self.tables[h.key].new_ids
                                            + h.name_token_ids(after)) for before, after in self.templates]
                       for h in self.layout.encoders}
        ident = self.identity
        self.enhancer = ident.enhancer.to(device).float().requires_grad_(False)
        self.adapter = ident.adapter.to(device).float().requires_grad_(True)
        self.face, self.anchor = ident.face_mean.to(device), ident.anchor.to(device)
        params = [t.table for t in self.tables.values()] + list(self.adapter.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=BASE_LEARNING_RATE * self.batch, **ADAM)
        sigmas = self.base.model_sampling.sigmas.to(device=device, dtype=torch.float32)
        self.alphas_cumprod = 1.0 / (1.0 + sigmas ** 2)
        self.prediction = self.base.model_type.name
        if self.prediction not in ("EPS", "V_PREDICTION"):
            raise ValueError(f"the recipe trains eps- or v-prediction models, not {self.prediction}")
        pixels = self.images[..., :3].permute(0, 3, 1, 2).float()
        pixels = F.interpolate(pixels, size=(self.resolution, self.resolution), mode="bicubic",
                               antialias=True, align_corners=False).clamp(0, 1)
        self.pixels = (pixels * 2.0 - 1.0).to(device)
        self.adm_tail = None
        if self.layout.arch == "sdxl":
            res = self.resolution
            zero_pooled = torch.zeros(1, 1280)
            adm = self.base.encode_adm(pooled_output=zero_pooled, width=res, height=res, crop_w=0, crop_h=0,
                                       target_width=res, target_height=res)
            self.adm_tail = adm[:, 1280:].to(device=device, dtype=torch.float32)
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        self.cpu_generator = torch.Generator().manual_seed(self.seed)
        return self

    def _install_table(self, handle) -> _Table:
        module = handle.encoder.transformer.get_input_embeddings()
        original = module.weight
        vocabulary = original.shape[0]
        initial = self.identity.initial_vectors[handle.key].to(self.device, torch.float32)
        table = torch.nn.Parameter(torch.cat([original.detach().float(), initial.clone()]))
        module.weight = table
        keep = torch.ones(table.shape[0], dtype=torch.bool, device=self.device)
        new_ids = list(range(vocabulary, vocabulary + initial.shape[0]))
        keep[new_ids] = False
        return _Table(module, original, table, table.detach().clone(), keep, new_ids, initial)

    def table_checks(self) -> dict[str, bool]:
        """Textual Inversion's invariant after training: only the new rows of each table moved."""
        same = all(torch.equal(t.table[t.keep], t.snapshot[t.keep]) for t in self.tables.values())
        moved = all(not torch.equal(t.table[~t.keep], t.snapshot[~t.keep]) for t in self.tables.values())
        return {**self.checks, "other_rows_unchanged": same, "new_rows_moved": moved}

    def __exit__(self, *exc) -> None:
        for t in self.tables.values():
            t.module.weight = t.original
        for p, flag in self._flags:
            p.grad = None
            p.requires_grad_(flag)
        self.text.reset_clip_options()

    # ---- one step ----
    def _latents(self) -> torch.Tensor:
        """VAE encode of a freshly drawn, randomly flipped batch; posterior sampled, then scaled."""
        index = torch.randint(0, self.pixels.shape[0], (self.batch,), generator=self.cpu_generator)
        flip = (torch.rand(self.batch, generator=self.cpu_generator) < 0.5).to(self.device)
        pixels = self.pixels[index.to(self.device)]
        pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
        with torch.no_grad():
            moments = self.vae.quant_conv(self.vae.encoder(pixels))
            mean, logvar = moments.chunk(2, dim=1)
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            sample = mean + std * torch.randn(mean.shape, generator=self.generator, device=self.device)
            return self.base.latent_format.process_in(sample)

    def _context(self, captions: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs, pooled = [], None
        with torch.autograd.graph.saved_tensors_hooks(_clone, _same), _text_attention(self.device):
            for handle in self.layout.encoders:
                z, p = handle.encoder([self.tokens[handle.key][c] for c in captions])[:2]
                outputs.append(z)
                pooled = p if p is not None else pooled
        return torch.cat(outputs, dim=-1).to(self.device), pooled

    def _regulariser(self) -> torch.Tensor:
        """Mahalanobis distance of the new rows from their start; Sigma^-1 by pinv, every step."""
        total = torch.zeros((), device=self.device)
        for t in self.tables.values():
            covariance = torch.cov(t.initial.T) + COVARIANCE_EPS * torch.eye(t.initial.shape[1], device=self.device)
            inverse = torch.linalg.pinv(covariance)
            offset = t.table[t.new_ids] - t.initial
            squared = ((offset @ inverse) * offset).sum(dim=-1)
            total = total + REGULARISER_WEIGHT * squared.clamp(min=DISTANCE_FLOOR).sqrt().mean()
        return total

    def step(self) -> float:
        x0 = self._latents()
        noise = torch.randn(x0.shape, generator=self.generator, device=self.device)
        timesteps = torch.randint(0, TIMESTEPS, (self.batch,), generator=self.generator, device=self.device)
        alpha = self.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
        noisy = alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise
        captions = torch.randint(0, len(self.templates), (self.batch,), generator=self.cpu_generator).tolist()
        context, pooled = self._context(captions)
        context = self.adapter(context, self.enhancer(self.face, self.anchor))
        y = None
        if self.adm_tail is not None:
            y = torch.cat([pooled.to(self.device), self.adm_tail.expand(self.batch, -1)], dim=1)
        prediction = self.unet(noisy, timesteps.float(), context=context, y=y, transformer_options={})
        target = noise if self.prediction == "EPS" else alpha.sqrt() * noise - (1 - alpha).sqrt() * x0
        loss = F.mse_loss(prediction.float(), target.float(), reduction="mean")
        (loss + self._regulariser()).backward()
        if not self.checks:
            self.checks = {
                "full_table_gradient": all(t.table.grad is not None and t.table.grad.shape == t.table.shape
                                           for t in self.tables.values()),
                "unused_to_kv_gradients": bool(self.unused_grads) and all(w.grad is not None
                                                                         for w in self.unused_grads)}
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for t in self.tables.values():
                t.table[t.keep] = t.snapshot[t.keep]
        for weight in self.unused_grads:
            weight.grad = None
        return loss.item()

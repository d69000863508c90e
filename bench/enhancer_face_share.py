"""What the face embedding contributes to the fused tokens Z, and how much gradient the Enhancer's
face side gets, at full size (CLIP-L, 512-d face, 768-d context) through Learn ID Token's own loop.

Why: on the tiny test models the Enhancer's face-side weights (expander, query) got gradients of
1e-9..1e-7, below AdamW's eps (1e-7), so they would barely move. The architecture explains part of it
before any weight is trained: the queries are made from the face alone, attend over the K anchor
tokens and nothing else, so per head the face only picks a convex combination of the K projected
anchor tokens: with K = 2 and 8 heads, Z depends on the face through 8 numbers at most, and the K rows
of Z are equal. The released code has the same structure. This script measures it:

  face_share      how far Z moves between different faces (relative to |Z|), at the start and after
                  training, next to the most any face could move it (each head fully on one anchor token)
  attention       the per-head weight on anchor token 0 over many faces (min, max)
  adapter_share   the same for the adapter's update of a real caption's context (the identity's effect
                  on what the UNet reads)
  gradients       per parameter group: RMS gradient per element over the steps, and the share of
                  elements whose gradient stays below AdamW's eps

  .host/venv/bin/python bench/enhancer_face_share.py [--steps 20] [--faces 64] [--resolution 64]

Prints JSON lines. Full-size random-weight SD1.5 (bench/sd_models.py) on the CPU: the UNet's weights
are random, so gradient sizes are indicative only; the structural numbers do not depend on them.
"""
from __future__ import annotations

import argparse
import collections
import logging
import shutil
import sys
import tempfile

import harness
import measure
import sd_models
import torch
from bench_training import make_identity, reference_images

log = logging.getLogger("bench.enhancer")


def unit_faces(count: int, dim: int, seed: int) -> torch.Tensor:
    faces = torch.randn(count, dim, generator=torch.Generator().manual_seed(seed))
    return faces / faces.norm(dim=1, keepdim=True)


def linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.linear(x, layer.weight, layer.bias)


def head_weights(enhancer, faces: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """[faces, heads, anchor tokens]: each head's attention from the (shared) query slot over the anchor."""
    queries = linear(enhancer.query, linear(enhancer.expander, faces))  # every query slot is this one
    keys = linear(enhancer.key_value, anchor)
    heads, width = enhancer.heads, enhancer.ctx_dim // enhancer.heads
    q = queries.view(-1, heads, width)
    k = keys.view(-1, heads, width).transpose(0, 1)  # [heads, K_a, width]
    logits = torch.einsum("fhd,hkd->fhk", q, k) / width ** 0.5
    return logits.softmax(dim=-1)


def extreme_tokens(enhancer, anchor: torch.Tensor) -> torch.Tensor:
    """Z when every head puts all its weight on anchor token j, for each j: [K_a, ctx]."""
    return linear(enhancer.output, linear(enhancer.key_value, anchor))


def face_share(identity, faces: torch.Tensor, context: torch.Tensor) -> dict:
    with torch.no_grad():
        enhancer, anchor = identity.enhancer, identity.anchor
        z = enhancer(faces, anchor)  # [F, K, ctx]
        mean = z.mean(dim=0)
        spread = (z - mean).flatten(1).norm(dim=1) / mean.norm()
        extremes = extreme_tokens(enhancer, anchor)
        possible = float((extremes[0] - extremes[-1]).norm() * (z.shape[1] ** 0.5) / mean.norm())
        weights = head_weights(enhancer, faces, anchor)[..., 0]  # [F, heads]
        updates = torch.stack([identity.adapter(context, z_i) - context for z_i in z])  # [F, 1, L, ctx]
        update_mean = updates.mean(dim=0)
        adapter_spread = (updates - update_mean).flatten(1).norm(dim=1) / update_mean.norm().clamp_min(1e-30)
    return {"z_rows_equal": bool(torch.allclose(z[:, 0], z[:, -1])),
            "face_spread_of_z_mean": round(float(spread.mean()), 6),
            "face_spread_of_z_max": round(float(spread.max()), 6),
            "most_any_face_could_move_z": round(possible, 6),
            "head_weight_on_anchor_token_0": {"min": round(float(weights.min()), 4),
                                              "max": round(float(weights.max()), 4),
                                              "std_over_faces": round(float(weights.std(dim=0).mean()), 6)},
            "adapter_update_norm": round(float(update_mean.norm()), 6),
            "face_spread_of_adapter_update_mean": round(float(adapter_spread.mean()), 6)}


def group_of(name: str) -> str:
    if name.startswith("enhancer."):
        return name.split(".")[1]  # expander / query / key_value / output
    if name.startswith("adapter."):
        return "adapter." + name.split(".")[1]
    return name  # token_vectors.clip_l


def train_and_watch(host, models, identity, steps: int, resolution: int, batch: int):
    """Learn ID Token's own loop; the optimiser's pre-step hook reads every gradient it is handed and
    counts the elements below AdamW's eps (the recipe's)."""
    trainer_mod, recipe = host.pack_module("nodes.training.trainer"), host.pack_module("idea.training_recipe")
    latents_mod = host.pack_module("nodes.training.reference_latents")
    sums, below, counts = collections.Counter(), collections.Counter(), collections.Counter()
    with torch.inference_mode():
        latents = latents_mod.reference_latents(models.vae, reference_images(2, resolution, 0), resolution)
    with torch.inference_mode(False):
        state = trainer_mod.TrainingState(identity.clone(), recipe.TrainSettings(
            steps=steps, batch_size=batch, seed=0, resolution=resolution, precision="fp32"))
        trainer = trainer_mod.IDTokenTrainer(models.model, models.clip, state, latents.clone())

        def read_gradients(optimizer, args, kwargs):
            for name, param in trainer.named_params.items():
                grad = param.grad.detach().float()
                group = group_of(name)
                sums[group] += float(grad.pow(2).sum())
                below[group] += int((grad.abs() < recipe.ADAM_EPS).sum())
                counts[group] += grad.numel()
        trainer.optimizer.register_step_pre_hook(read_gradients)
        trainer.run()
    gradients = {group: {"rms_per_element": float(f"{(sums[group] / counts[group]) ** 0.5:.3e}"),
                         "share_below_adam_eps": round(below[group] / counts[group], 4)} for group in sums}
    return state, gradients


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tiny", action="store_true",
                        help="the tests' tiny SD1.5 (full-size CLIP-L, one-level UNet): a quick check that it runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    reporter = measure.Reporter(sys.stdout)
    base = tempfile.mkdtemp(prefix="idea-bench-enhancer-")
    try:
        host = harness.start_host("cpu", base)
        models = sd_models.build("sd15", tiny=args.tiny)
        label = models.label + ("" if args.tiny else ", random weights")
        identity = make_identity(host, models.clip, seed=0)
        faces = unit_faces(args.faces, identity.face_dim, seed=1)
        encoder = host.pack_module("nodes.training.caption_encoder").CaptionEncoder(
            models.clip, host.pack_module("nodes.host.text_encoders").read_clip(models.clip))
        with torch.inference_mode(False), torch.no_grad():
            encoder.prepare()
            context, _ = encoder.encode([0], identity.token_vectors)
        started = identity.clone()
        with torch.no_grad():
            started.adapter.gamma.fill_(1.0)  # open the gate so the untrained adapter's share shows
        reporter.emit({"bench": "enhancer_face_share", "stage": "initial", "model": label,
                       "device": "cpu", **face_share(started, faces, context)})
        state, gradients = train_and_watch(host, models, identity, args.steps, args.resolution, args.batch)
        trained = state.identity
        trained.enhancer.cpu(), trained.adapter.cpu()
        trained.anchor, trained.face_mean = trained.anchor.cpu(), trained.face_mean.cpu()
        with torch.inference_mode(False), torch.no_grad():
            encoder.prepare()
            context, _ = encoder.encode([0], {k: v.cpu() for k, v in trained.token_vectors.items()})
        reporter.emit({"bench": "enhancer_face_share", "stage": f"after {args.steps} steps",
                       "model": label, "device": "cpu", "batch": args.batch,
                       "resolution": args.resolution, "gamma": round(float(trained.adapter.gamma), 6),
                       **face_share(trained, faces, context), "gradients": gradients,
                       "adam_eps": host.pack_module("idea.training_recipe").ADAM_EPS})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The parts of the training recipe FLUX.1 needs beyond SD's (docs/flux.md, "Loss and timesteps").

The released recipe draws integer timesteps uniformly from the SD schedule. FLUX.1 is a rectified-flow
model whose noise levels come from its own shifted schedule (the host's model_sampling holds it as a
table of sigmas, shift included, also when a ModelSamplingFlux node changed it); drawing uniformly
over that table is the same rule: uniform in the model's own timestep, mapped through its schedule.
FLUX.1-dev is guidance-distilled: the guidance strength is an input of the model, so training has to
pick one.
"""
from __future__ import annotations

import torch

# FLUX.1-dev's guidance input during training: the value the host gives a FLUX prompt without a
# FluxGuidance node, and the default of FluxGuidance and CLIPTextEncodeFlux, i.e. what the tokens
# are most often sampled with.
TRAINING_GUIDANCE = 3.5


def flow_sigmas(sigma_table: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Noise levels for a batch: `uniform` in [0, 1) picks entries of the model's ascending sigma
    table (ModelSamplingFlux keeps 10000), so every level the sampler can visit is equally likely
    per timestep, exactly as the SD recipe's uniform integer timesteps."""
    if sigma_table.dim() != 1 or sigma_table.numel() < 2:
        raise ValueError(f"the sigma table must be a 1-D schedule, got {list(sigma_table.shape)}")
    count = sigma_table.numel()
    index = (uniform.to(torch.float64) * count).floor().clamp(0, count - 1).long()
    return sigma_table.detach().float().cpu()[index]

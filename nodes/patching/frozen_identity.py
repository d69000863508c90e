"""What both Apply nodes take from an identity: its tokens Z frozen for inference, and the warning
that an untrained adapter changes nothing. Kept here, not in one node module, so neither node
imports the other."""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def frozen_id_tokens(identity) -> torch.Tensor:
    """Z, detached. Nodes run in inference mode; Z is made outside it so what it ends up in stays
    usable by code that runs with autograd (a training node downstream)."""
    with torch.inference_mode(False), torch.no_grad():
        return identity.fused_tokens().detach().clone()


def warn_if_untrained(identity, node: str) -> None:
    if float(identity.adapter.gamma) == 0.0:
        log.warning("this identity's ID-Adapter is untrained (its gate gamma is 0), so %s changes nothing; "
                    "train the identity with Learn ID Token first", node)

"""The ID-EA training recipe as data: captions, optimiser settings, step sampling and the loss weight.

Numbers follow the authors' released command (docs/method.md, "Training recipe"): 2 tokens, batch 8,
320 steps, AdamW (0.9, 0.999, weight decay 1e-2, eps 1e-7), lr 0.0015 per sample scaled by the batch,
constant; uniform timesteps; random horizontal flips; the released dataset's 81 caption templates
filled with "face of <v0> <v1> person".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

# The small Textual-Inversion template set (object templates); "{}" is the subject phrase.
SMALL_TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)
# The released dataset's rule: the 27, then the 27 with a leading "a photo of" made "an illustration
# of", then made "a depiction of" (other templates repeat unchanged in each block); drawn from all 81.
PHOTO_PREFIX = "a photo of"
PREFIX_VARIANTS = ("an illustration of", "a depiction of")


def released_templates(small: tuple[str, ...] = SMALL_TEMPLATES) -> tuple[str, ...]:
    """The 81 templates of the released recipe, in the released order (repeats kept: they set how
    often each caption is drawn)."""
    blocks = [small]
    for variant in PREFIX_VARIANTS:
        blocks.append(tuple(variant + t[len(PHOTO_PREFIX):] if t.startswith(PHOTO_PREFIX + " ") else t
                            for t in small))
    return tuple(t for block in blocks for t in block)


CAPTION_TEMPLATES = released_templates()
TOKEN_SLOT = "\0"  # marks where the learned tokens go inside the subject phrase
SUBJECT = "face of " + TOKEN_SLOT + " person"

BASE_LEARNING_RATE = 0.0015  # per sample; the released command scales it by the batch size
ADAM_BETAS = (0.9, 0.999)
ADAM_WEIGHT_DECAY = 1e-2
ADAM_EPS = 1e-7
REGULARISER_WEIGHT = 8e-4
DEFAULT_RESOLUTION = {"sd1": 512, "sd2": 512, "sdxl": 1024, "flux": 512}  # FLUX.1: docs/flux.md, Resolution
V_MODEL_RESOLUTION = 768  # SD2.x 768-v checkpoints were trained at 768 px, with v-prediction


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 320
    batch_size: int = 8
    learning_rate: float = BASE_LEARNING_RATE  # per sample
    seed: int = 0
    train_enhancer: bool = True
    resolution: int = 512
    precision: str = "fp32"
    gradient_checkpointing: bool = False

    @property
    def scaled_learning_rate(self) -> float:
        return self.learning_rate * self.batch_size

    def as_metadata(self) -> dict:
        return {**asdict(self), "scaled_learning_rate": self.scaled_learning_rate}


def default_resolution(arch: str, prediction: str) -> int:
    """The training side the base model was made for (docs/method.md, "Names and sizes"): a
    v-prediction SD2.x model is a 768-v checkpoint; SD2.x base (eps) and SD1.x train at 512, SDXL at 1024."""
    if arch == "sd2" and prediction == "v":
        return V_MODEL_RESOLUTION
    return DEFAULT_RESOLUTION[arch]


def caption_parts(template: str) -> tuple[str, str]:
    """(text before the learned tokens, text after them) of one caption."""
    before, after = template.format(SUBJECT).split(TOKEN_SLOT)
    return before.strip(), after.strip()


def make_optimizer(parameters: list[torch.Tensor], settings: TrainSettings) -> torch.optim.Optimizer:
    fused = all(p.is_cuda for p in parameters)  # one kernel for all tensors on a GPU
    return torch.optim.AdamW(parameters, lr=settings.scaled_learning_rate, betas=ADAM_BETAS,
                             weight_decay=ADAM_WEIGHT_DECAY, eps=ADAM_EPS, fused=fused or None)


@dataclass
class StepDraw:
    """What one training step uses, drawn from a generator seeded by (seed, step) so a resumed or
    repeated run draws exactly the same steps."""

    sample_indices: torch.Tensor  # [B] indices into the cached latents (images and their mirrors)
    caption_indices: torch.Tensor  # [B] indices into CAPTION_TEMPLATES
    timesteps: torch.Tensor  # [B] uniform in [0, 1): the share of the schedule (0 = least noise)
    noise_seed: int


def draw_step(seed: int, step: int, batch_size: int, num_latents: int) -> StepDraw:
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2 ** 63))
    return StepDraw(
        sample_indices=torch.randint(0, num_latents, (batch_size,), generator=gen),
        caption_indices=torch.randint(0, len(CAPTION_TEMPLATES), (batch_size,), generator=gen),
        timesteps=torch.rand(batch_size, generator=gen),
        noise_seed=int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen)),
    )


def native_loss_weight(prediction: str, sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """Weight turning an x0-space squared error into the model's own training loss, so the recipe's
    epsilon (or v) MSE is reproduced exactly from the host's denoised prediction.

    eps: x0 - x0_hat = sigma * (eps_hat - eps)                      -> weight 1 / sigma^2
    v:   x0 - x0_hat = sigma*sd/sqrt(sigma^2+sd^2) * (v_hat - v)    -> weight (sigma^2+sd^2)/(sigma*sd)^2
    flow (rectified flow, FLUX.1: x_t = sigma*eps + (1-sigma)*x0, the model predicts u = eps - x0):
         x0 - x0_hat = sigma * (u_hat - u)                          -> weight 1 / sigma^2
    x0:  the error itself                                           -> weight 1
    """
    sigma = sigma.to(torch.float32)
    if prediction in ("eps", "flow"):
        return 1.0 / sigma.clamp_min(1e-6) ** 2
    if prediction == "v":
        sd2 = sigma_data ** 2
        return (sigma ** 2 + sd2) / (sigma.clamp_min(1e-6) ** 2 * sd2)
    if prediction == "x0":
        return torch.ones_like(sigma)
    raise ValueError(f"unsupported prediction type {prediction!r} (eps, v, flow or x0)")


def denoising_loss(x0_pred: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor, prediction: str,
                   sigma_data: float = 1.0) -> torch.Tensor:
    """Per-sample loss [B]: the model's native (eps / v / flow / x0) MSE, from the denoised prediction."""
    error = (x0_pred - x0).pow(2).flatten(1).mean(dim=1)
    return native_loss_weight(prediction, sigma, sigma_data).to(error.device) * error

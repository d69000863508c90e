"""What Learn ID Token needs on FLUX.1-dev at full size, from the host's own classes (docs/flux.md).

No GPU and no FLUX weights are at hand, so the figures are built from parts that are exact or measured:
- parameters: counted on the host's FLUX.1-dev transformer, T5-XXL and CLIP-L built on the meta device
  with their real configs, and on the pack's ID-Adapter and ID-Enhancer at width 4096;
- activations: the bytes autograd keeps for backward, measured on ONE real-width block of each kind
  (a 3072-wide double-stream block with 24 heads, a single-stream block, a T5-XXL layer) run on the CPU
  the way training runs them (bf16 autocast, the pack's saved-tensor snapshots, the inputs and the
  modulation vector carrying gradients), at two token counts: bytes = slope x tokens + intercept;
  again with fp8 weights (the host's manual cast), whose bf16 copies backward keeps;
- compute: FLOPs of forward + input-gradient backward counted by torch's FlopCounterMode on the same
  blocks at three token counts (a + b*L + c*L^2, attention being the L^2 part).
`--markdown` multiplies these out into docs/flux.md's table. JSON lines on stdout.

  python bench/flux_memory.py [--markdown]        (CPU, a few minutes; about 3 GB of memory)
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from support.tiny_models import ensure_host_importable  # noqa: E402

log = logging.getLogger("flux_memory")
GB = 1e9
FULL_DIT = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768,
            "context_in_dim": 4096, "hidden_size": 3072, "mlp_ratio": 4.0, "num_heads": 24, "depth": 19,
            "depth_single_blocks": 38, "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True,
            "guidance_embed": True}  # what the host's detection reports for flux1-dev.safetensors
T5_TOKENS = 256  # the host pads FLUX prompts, and so the training captions, to 256 T5 tokens


def _idea_standalone():
    """The pack's idea/ package without the repo root on sys.path (its nodes/ would shadow the host's)."""
    if "idea" not in sys.modules:
        spec = importlib.util.spec_from_file_location("idea", REPO / "idea" / "__init__.py",
                                                      submodule_search_locations=[str(REPO / "idea")])
        sys.modules["idea"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    import idea.adapter  # noqa: F401
    import idea.enhancer  # noqa: F401
    return sys.modules["idea"]


def parameter_counts() -> dict:
    """Exact counts of the full-size models, built on the meta device (no memory)."""
    import json as json_module
    import os
    import comfy.clip_model
    import comfy.ldm.flux.model
    import comfy.ops
    import comfy.sd1_clip
    import comfy.text_encoders.t5
    from support.tiny_flux import flux_params
    ops = comfy.ops.disable_weight_init
    meta = torch.device("meta")
    dit = comfy.ldm.flux.model.Flux(dtype=torch.bfloat16, device=meta, operations=ops, **flux_params(FULL_DIT))
    te_dir = os.path.dirname(comfy.text_encoders.t5.__file__)
    with open(os.path.join(te_dir, "t5_config_xxl.json")) as f:
        t5 = comfy.text_encoders.t5.T5(json_module.load(f), torch.bfloat16, meta, ops)
    with open(os.path.join(os.path.dirname(comfy.sd1_clip.__file__), "sd1_clip_config.json")) as f:
        clip_l = comfy.clip_model.CLIPTextModel(json_module.load(f), torch.bfloat16, meta, ops)
    idea = _idea_standalone()
    IDAdapter, IDEnhancer = idea.adapter.IDAdapter, idea.enhancer.IDEnhancer
    with torch.device("meta"):
        adapter, enhancer = IDAdapter(4096), IDEnhancer(512, 4096, 2)
    counted = {"dit": dit, "t5xxl": t5, "clip_l": clip_l, "adapter": adapter, "enhancer": enhancer}
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in counted.items()}
    counts["double_block"] = sum(p.numel() for p in dit.double_blocks[0].parameters())
    counts["single_block"] = sum(p.numel() for p in dit.single_blocks[0].parameters())
    counts["t5_layer"] = sum(p.numel() for p in t5.encoder.block[1].parameters())
    counts["tokens"] = 2 * (4096 + 768)
    return counts


class SavedBytes:
    """Bytes of the tensors autograd keeps for backward that are not the module's own weights (the
    weights are resident anyway): activations, and any per-layer weight copy (fp8 -> bf16 casts).
    The pack's training snapshots (clones) what depends on the learned vectors, as it does here."""

    def __init__(self, weights: torch.nn.Module):
        self.weight_ptrs = {p.untyped_storage().data_ptr() for p in weights.parameters()}
        self.kept: dict[int, int] = {}

    def pack(self, tensor):
        kept = tensor.clone() if tensor.requires_grad else tensor
        ptr = kept.untyped_storage().data_ptr()
        if ptr not in self.weight_ptrs:
            self.kept[ptr] = kept.untyped_storage().nbytes()
        return kept

    @staticmethod
    def unpack(tensor):
        return tensor

    def total(self) -> int:
        return sum(self.kept.values())


def double_block(dtype, ops):
    import comfy.ldm.flux.layers
    return comfy.ldm.flux.layers.DoubleStreamBlock(3072, 24, mlp_ratio=4.0, qkv_bias=True, dtype=dtype,
                                                   operations=ops)


def single_block(dtype, ops):
    import comfy.ldm.flux.layers
    return comfy.ldm.flux.layers.SingleStreamBlock(3072, 24, mlp_ratio=4.0, dtype=dtype, operations=ops)


def t5_layer(dtype, ops):
    import comfy.text_encoders.t5
    return comfy.text_encoders.t5.T5Block(4096, 4096, 10240, "gelu_pytorch_tanh", True, 64, False, dtype, None, ops)


def _fill(module: torch.nn.Module) -> torch.nn.Module:
    """Small finite weights (the values do not change bytes or FLOPs), in the module's own dtype."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.randn(p.shape) * 0.02).to(p.dtype))
    return module


def make_block(kind: str, weights: str):
    """The block and a closure running it on `tokens` tokens with gradient-carrying inputs. weights:
    bf16 (DiT as the host loads it for training), fp8 (e4m3fn weights, the host's manual cast to
    bf16) or fp16 (T5-XXL as the host loads it: fp16 weights, fp32 activations, autocast to bf16)."""
    import comfy.ldm.flux.layers
    import comfy.ops
    from comfy.ldm.modules.attention import optimized_attention_for_device
    dtype = {"bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn, "fp16": torch.float16}[weights]
    ops = comfy.ops.manual_cast if weights != "bf16" else comfy.ops.disable_weight_init
    if weights == "fp8":  # random fp8 weights: build in bf16, then store as e4m3fn
        block = _fill({"double": double_block, "single": single_block, "t5": t5_layer}[kind](torch.bfloat16, ops))
        block.to(dtype)
    else:
        block = _fill({"double": double_block, "single": single_block, "t5": t5_layer}[kind](dtype, ops))
    block.requires_grad_(False)
    embed = comfy.ldm.flux.layers.EmbedND(dim=128, theta=10000, axes_dim=[16, 56, 56])

    def run(tokens: int):
        gen = torch.Generator().manual_seed(tokens)
        if kind == "t5":  # a layer after the first: it reads the first layer's relative-position bias
            x = torch.randn(1, tokens, 4096, generator=gen, requires_grad=True)
            bias = torch.randn(1, 64, tokens, tokens, generator=gen)
            attention = optimized_attention_for_device(x.device, mask=True, small_input=True)
            out, _ = block(x * 1.0, None, bias, attention)
            return out, [x]
        act = torch.bfloat16
        vec = torch.randn(1, 3072, generator=gen, dtype=act).requires_grad_(True)
        txt_len = min(T5_TOKENS, tokens // 4)
        pe = embed(torch.zeros(1, tokens, 3))
        if kind == "double":
            img = torch.randn(1, tokens - txt_len, 3072, generator=gen, dtype=act).requires_grad_(True)
            txt = torch.randn(1, txt_len, 3072, generator=gen, dtype=act).requires_grad_(True)
            out_img, out_txt = block(img=img * 1.0, txt=txt * 1.0, vec=vec, pe=pe)
            return out_img.float().square().sum() + out_txt.float().square().sum(), [img, txt, vec]
        x = torch.randn(1, tokens, 3072, generator=gen, dtype=act).requires_grad_(True)
        return block(x * 1.0, vec=vec, pe=pe), [x, vec]
    return block, run


def measure_block(kind: str, weights: str, token_counts: tuple[int, ...]) -> dict:
    """Saved bytes (minus the two scaled input copies the measurement itself makes) and FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode
    block, run = make_block(kind, weights)
    saved, flops, forward_flops = [], [], []
    for tokens in token_counts:
        meter = SavedBytes(block)
        with kernels_of_training(kind), torch.autocast("cpu", dtype=torch.bfloat16), \
                torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
            out, inputs = run(tokens)
        saved.append(meter.total())
        snapshots = SavedBytes(block)  # the host's blocks add residuals in place: backward needs these
        with FlopCounterMode(display=False) as counter, kernels_of_training(kind):
            with torch.autocast("cpu", dtype=torch.bfloat16), \
                    torch.autograd.graph.saved_tensors_hooks(snapshots.pack, snapshots.unpack):
                out, inputs = run(tokens)
            forward_flops.append(counter.get_total_flops())
            (out.float().square().sum() if out.dim() else out).backward()  # only the inputs require grad
        flops.append(counter.get_total_flops())
        log.info("%s %s %d tokens: %.1f MB kept, %.2f GFLOP", kind, weights, tokens, saved[-1] / 1e6, flops[-1] / 1e9)
    return {"bench": "flux_block", "block": kind, "weights": weights, "token_counts": list(token_counts),
            "saved_bytes": saved, "flops": flops, "saved_fit": quadratic_fit(token_counts, saved),
            "flops_fit": quadratic_fit(token_counts, flops),
            "forward_flops_fit": quadratic_fit(token_counts, forward_flops)}


def quadratic_fit(xs, ys) -> dict:
    """a + b*L + c*L^2 through three points (the L^2 part is attention's)."""
    (l1, l2, l3), (f1, f2, f3) = xs, ys
    c = ((f3 - f1) / (l3 - l1) - (f2 - f1) / (l2 - l1)) / (l3 - l2)
    b = (f2 - f1) / (l2 - l1) - c * (l1 + l2)
    return {"fixed": f1 - b * l1 - c * l1 * l1, "per_token": b, "per_token_squared": c}


def kernels_of_training(kind: str):
    """The attention kernels training uses on a GPU: the pack runs the text encoder with SDPA's math
    kernel (nodes/training/caption_encoder.py, sdpa_for_backward); the transformer gets PyTorch's choice (flash)."""
    if kind != "t5":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.MATH])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="also print the table for docs/flux.md")
    parser.add_argument("--tokens", default="64,128,192", help="token counts the blocks are measured at")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    from support import paths
    sys.path.insert(0, str(paths.comfyui_dir()))
    from comfy.cli_args import args as host_args
    host_args.use_pytorch_cross_attention = True  # the attention the host uses on an NVIDIA GPU (SDPA)
    ensure_host_importable()
    import comfy.model_management as mm
    # newer hosts: the differentiable RoPE training uses (nodes/training/autograd_weights.py)
    if hasattr(mm, "in_training"):
        mm.in_training = True
    torch.manual_seed(0)
    tokens = tuple(int(t) for t in args.tokens.split(","))
    records = [{"bench": "flux_parameters", **parameter_counts()}]
    print(json.dumps(records[0]), flush=True)
    for kind, weights in (("double", "bf16"), ("single", "bf16"), ("t5", "fp16"), ("double", "fp8"),
                          ("single", "fp8"), ("t5", "fp8")):
        record = measure_block(kind, weights, tokens)
        records.append(record)
        print(json.dumps(record), flush=True)
    if args.markdown:
        from flux_memory_table import markdown_table
        print(markdown_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

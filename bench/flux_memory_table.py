"""docs/flux.md's memory and time table, multiplied out from bench/flux_memory.py's measured lines.

Model of one training step of Learn ID Token on FLUX.1-dev (every term is printed in the table's notes):
  weights      transformer (bf16: 2 B/param, fp8: 1 B/param) + T5-XXL (fp16 as the host loads it, or
               fp8) + CLIP-L (fp16); without the text encoder's backward T5-XXL is not resident
               (its 81 caption encodings, 170 MB, stand in for it)
  trainables   ID-Adapter + ID-Enhancer + tokens in fp32 with gradient and AdamW's two moments: 16 B/param
  transformer  batch x (19 double + 38 single blocks x kept bytes per block at L tokens) with
               checkpointing off; with it on, each block's inputs (bf16) + one block recomputed
               (fp8 weights: each kept block also keeps its bf16 weight copy, the measured fixed part)
  T5-XXL       24 layers x kept bytes per layer at 256 tokens x batch (+ the fixed part: its fp16->bf16
               weight copies), only with the text encoder's backward
  overhead     1.0 GB: CUDA context, allocator slack, the VAE (0.17 GB) and the step's temporaries
Time: counted FLOPs (forward + input-gradient backward; + one more forward of every block when
checkpointing) at an assumed sustained 40 % of each card's dense bf16 peak: a projection, not a measurement.
The transformer's attention is added as 4*L^2*3072 FLOPs forward and 3x that forward + backward (what
FlopCounterMode counts for T5's math-kernel attention), because torch's counter does not see the CPU
flash-attention kernel the measured blocks ran.
"""
from __future__ import annotations

OVERHEAD_GB = 1.0
GB = 1e9
DOUBLE, SINGLE, T5_LAYERS, HIDDEN, T5_TOKENS = 19, 38, 24, 3072, 256
CARDS = {"RTX 4090 (24 GB)": 165e12, "L40S (48 GB)": 362e12, "H100 SXM (80 GB)": 989e12}  # dense bf16 FLOP/s
SUSTAINED = 0.4
CAPTION_CACHE_GB = 81 * T5_TOKENS * 4096 * 2 / GB


def _at(fit: dict, tokens: float) -> float:
    return fit["fixed"] + fit["per_token"] * tokens + fit["per_token_squared"] * tokens * tokens


def _per_sample(fit: dict, tokens: float) -> float:
    """The part that grows with the batch (the fixed part, e.g. weight copies, is paid once)."""
    return fit["per_token"] * tokens + fit["per_token_squared"] * tokens * tokens


def tokens_at(resolution: int) -> int:
    return (resolution // 16) ** 2 + T5_TOKENS


def memory_gb(records: dict, resolution: int, batch: int, weights: str, checkpointing: bool,
              text_backward: bool) -> dict:
    counts = records["params"]
    block = {kind: records[(kind, weights)]["saved_fit"] for kind in ("double", "single")}
    tokens = tokens_at(resolution)
    parts = {"transformer weights": counts["dit"] * (2 if weights == "bf16" else 1) / GB,
             "CLIP-L": counts["clip_l"] * 2 / GB,
             "trainables": 16 * (counts["adapter"] + counts["enhancer"] + counts["tokens"]) / GB}
    if checkpointing:
        inputs = (DOUBLE + SINGLE) * tokens * HIDDEN * 2 * batch
        one_block = max(_at(block["double"], tokens) + (batch - 1) * _per_sample(block["double"], tokens),
                        _at(block["single"], tokens) + (batch - 1) * _per_sample(block["single"], tokens))
        parts["transformer activations"] = (inputs + one_block) / GB
    else:
        parts["transformer activations"] = (
            DOUBLE * (block["double"]["fixed"] + batch * _per_sample(block["double"], tokens))
            + SINGLE * (block["single"]["fixed"] + batch * _per_sample(block["single"], tokens))) / GB
    if text_backward:
        t5 = records[("t5", "fp16" if weights == "bf16" else "fp8")]["saved_fit"]
        parts["T5-XXL weights"] = counts["t5xxl"] * (2 if weights == "bf16" else 1) / GB
        if checkpointing:
            parts["T5-XXL activations"] = (T5_LAYERS * T5_TOKENS * 4096 * 4 * batch
                                           + _at(t5, T5_TOKENS) + (batch - 1) * _per_sample(t5, T5_TOKENS)) / GB
        else:
            parts["T5-XXL activations"] = T5_LAYERS * (t5["fixed"] + batch * _per_sample(t5, T5_TOKENS)) / GB
    else:
        parts["T5-XXL caption cache"] = CAPTION_CACHE_GB
    parts["overhead"] = OVERHEAD_GB
    return {"total": sum(parts.values()), **parts}


def step_flops(records: dict, resolution: int, batch: int, checkpointing: bool, text_backward: bool) -> float:
    tokens = tokens_at(resolution)
    dit = {kind: records[(kind, "bf16")] for kind in ("double", "single")}
    total = batch * sum(n * _per_sample(dit[k]["flops_fit"], tokens) for k, n in (("double", DOUBLE),
                                                                                   ("single", SINGLE)))
    attention_forward = 4 * tokens * tokens * HIDDEN * (DOUBLE + SINGLE)
    total += batch * 3 * attention_forward
    if checkpointing:
        total += batch * (sum(n * _per_sample(dit[k]["forward_flops_fit"], tokens)
                              for k, n in (("double", DOUBLE), ("single", SINGLE))) + attention_forward)
    if text_backward:
        t5 = records[("t5", "fp16")]
        total += batch * T5_LAYERS * _per_sample(t5["flops_fit"], T5_TOKENS)
        if checkpointing:
            total += batch * T5_LAYERS * _per_sample(t5["forward_flops_fit"], T5_TOKENS)
    counts = records["params"]
    total += batch * 6 * counts["adapter"] * (T5_TOKENS + 2)  # the adapter: forward + two backward matmuls
    return total


def _fits(total: float) -> str:
    for card in (24, 48, 80):
        if total <= card:
            return f"{total:.1f} ({card})"
    return f"{total:.1f} (-)"


def index(lines: list[dict]) -> dict:
    records = {}
    for line in lines:
        if line.get("bench") == "flux_parameters":
            records["params"] = line
        elif line.get("bench") == "flux_block":
            records[(line["block"], line["weights"])] = line
    return records


def markdown_table(lines: list[dict]) -> str:
    records = index(lines)
    rows = ["| px | weights | grad. checkpointing | T5 backward | batch 1 | batch 2 | batch 4 |",
            "|---|---|---|---|---|---|---|"]
    for resolution in (512, 1024):
        for weights in ("bf16", "fp8"):
            for checkpointing in (False, True):
                for text_backward in (True, False):
                    cells = [_fits(memory_gb(records, resolution, b, weights, checkpointing, text_backward)["total"])
                             for b in (1, 2, 4)]
                    rows.append(f"| {resolution} | {weights} | {'on' if checkpointing else 'off'} | "
                                f"{'with' if text_backward else 'without'} | " + " | ".join(cells) + " |")
    times = ["", "| px | batch | grad. checkpointing | T5 backward | TFLOP per step | "
             + " | ".join(f"{card}: s/step, min/320 steps" for card in CARDS) + " |",
             "|---|---|---|---|---|" + "---|" * len(CARDS)]
    for resolution in (512, 1024):
        for batch in (1, 4):
            for checkpointing in (False, True):
                flops = step_flops(records, resolution, batch, checkpointing, True)
                cells = []
                for peak in CARDS.values():
                    seconds = flops / (peak * SUSTAINED)
                    cells.append(f"{seconds:.2f}, {seconds * 320 / 60:.1f}")
                times.append(f"| {resolution} | {batch} | {'on' if checkpointing else 'off'} | with | "
                             f"{flops / 1e12:.1f} | " + " | ".join(cells) + " |")
    parts = memory_gb(records, 1024, 1, "bf16", False, True)
    breakdown = ["", "Parts of 1024 px, batch 1, bf16, checkpointing off, with T5's backward (GB): "
                 + ", ".join(f"{name} {value:.2f}" for name, value in parts.items() if name != "total")]
    return "\n".join(rows + times + breakdown)


if __name__ == "__main__":
    import json
    import sys
    with open(sys.argv[1], encoding="utf-8") as handle:
        print(markdown_table([json.loads(line) for line in handle if line.strip()]))

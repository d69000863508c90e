"""The benchmarks must keep running: bench/run_all.py --tiny end to end, every expected JSON line.

No time is ever asserted (the machine's load decides those); what is checked is that each
measurement ran, on the right models, with finite positive numbers, that the published recipe kept
its defining traits, that Apply ID-Adapter at weight 0 leaves the generation bit-identical, and
that asking for a GPU that is not there stops with a clear message.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from support import paths, tiny_models

REPO = paths.REPO
RUN_ALL = REPO / "bench" / "run_all.py"
TINY_MODELS = ("sd15-tiny", "sd21-tiny", "sdxl-tiny")
TINY_STEPS = 2


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def lines_of(records, bench, **match):
    return [r for r in records if r.get("bench") == bench and all(r.get(k) == v for k, v in match.items())]


def one(records, bench, **match):
    found = lines_of(records, bench, **match)
    assert len(found) == 1, f"expected one {bench} line with {match}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache_dir):
    tiny_models.tiny_sd15_checkpoint(cache_dir)  # built once here, not inside the timed run
    out = tmp_path_factory.mktemp("bench") / "tiny.jsonl"
    command = [sys.executable, str(RUN_ALL), "--tiny", "--models", "sd15,sd21,sdxl,flux", "--out", str(out)]
    proc = subprocess.run(command,
                          cwd=REPO, capture_output=True, text=True, timeout=2400, check=False)
    stdout_lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        records = [json.loads(line) for line in stdout_lines]
    except json.JSONDecodeError as err:
        pytest.fail(f"stdout holds a line that is not JSON ({err}):\n{proc.stdout[-3000:]}")
    return proc, records, out


def test_run_succeeds_and_stdout_is_only_json_lines_also_written_to_the_file(tiny_run):
    proc, records, out = tiny_run
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert all(isinstance(r, dict) and "bench" in r for r in records)
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
    header, summary = records[0], records[-1]
    assert header["bench"] == "header" and header["device"] == "cpu" and header["tiny"] is True
    assert header["torch"] == torch.__version__ and header["comfyui"] and "--tiny" in header["command"]
    assert summary["bench"] == "summary" and summary["status"] == "ok" and summary["failed"] == 0
    assert summary["lines"] == len(records) - 1
    assert not [r for r in records if r.get("status") in ("error", "oom")]


@pytest.mark.parametrize("model", TINY_MODELS)
def test_node_and_published_recipe_both_measured_on_each_model(tiny_run, model):
    _, records, _ = tiny_run
    node = one(records, "learn_id_token", impl="node", model=model)
    recipe = one(records, "learn_id_token", impl="published_recipe", model=model)
    for line in (node, recipe):
        assert line["status"] == "ok" and line["device"] == "cpu"
        assert (line["steps"], line["batch"], line["resolution"]) == (TINY_STEPS, 2, 64)
        for key in ("seconds_total", "seconds_first_step", "seconds_per_step", "seconds_per_step_mean",
                    "projected_320_steps_seconds", "final_loss", "process_max_rss_gib",
                    "unet_params_m", "text_params_m"):
            assert finite_positive(line[key]), (model, line["impl"], key, line[key])
        assert line["projection"].startswith("projected") and "not measured" in line["projection"]
        assert line["peak_memory_gib"] is None  # no GPU: never a made-up figure
        assert line["seconds_total"] >= line["seconds_per_step"]
    assert node["dtype"] == "fp32" and recipe["dtype"] == "fp32"  # the CPU trains in fp32
    assert node["gradient_checkpointing_on"] is (model == "sdxl-tiny")  # auto: on for SDXL only
    assert recipe["recipe_checks"] == {"full_table_gradient": True, "unused_to_kv_gradients": True,
                                       "other_rows_unchanged": True, "new_rows_moved": True}
    assert recipe["out_of_memory_at_batch"] == []
    speed = one(records, "learn_id_token_speedup", model=model)
    assert speed["status"] == "ok" and finite_positive(speed["per_step"]) and finite_positive(speed["for_320_steps"])


def test_flux_training_and_memory_sweep_run_on_the_small_flux(tiny_run):
    """The FLUX entries bench/gpu_all.sh flux runs at full size: the node trains (checkpointing auto =
    on), no published recipe exists for FLUX, and the memory sweep reports each setting."""
    _, records, _ = tiny_run
    node = one(records, "learn_id_token", impl="node", model="flux-tiny")
    assert node["status"] == "ok" and (node["steps"], node["batch"], node["resolution"]) == (TINY_STEPS, 1, 64)
    assert node["gradient_checkpointing_on"] is True and finite_positive(node["seconds_per_step"])
    assert finite_positive(node["final_loss"]) and node["peak_memory_gib"] is None
    assert not lines_of(records, "learn_id_token", impl="published_recipe", model="flux-tiny")
    sweep = one(records, "flux_memory_sweep", model="flux-tiny")  # tiny: one setting, checkpointing off
    assert sweep["status"] == "ok"
    assert (sweep["resolution"], sweep["batch"], sweep["gradient_checkpointing"]) == (64, 1, "off")
    assert sweep["gradient_checkpointing_on"] is False and finite_positive(sweep["seconds_per_step"])


@pytest.mark.parametrize("model", ("sd15-tiny", "sdxl-tiny", "flux-tiny"))
def test_sampling_with_and_without_the_adapter(tiny_run, model):
    _, records, _ = tiny_run
    variants = ("plain", "id_adapter_w1", "id_adapter_w0", "id_conditioning_w1")
    runs = {v: one(records, "sampling", model=model, variant=v) for v in variants}
    for line in runs.values():
        assert line["status"] == "ok" and line["steps"] == 3 and line["resolution"] == 64
        assert line["cfg"] == (1.0 if model == "flux-tiny" else 7.0)  # FLUX.1-dev is sampled at CFG 1
        assert finite_positive(line["seconds_median"]) and finite_positive(line["seconds_min"])
        assert finite_positive(line["seconds_per_step"])
    assert runs["id_adapter_w0"]["output_identical_to_plain"] is True
    assert runs["id_adapter_w1"]["output_identical_to_plain"] is False  # the adapter was really applied
    assert runs["id_conditioning_w1"]["output_identical_to_plain"] is False
    conditioning = one(records, "id_conditioning", model=model)
    assert finite_positive(conditioning["seconds_node_first_run"])
    assert finite_positive(conditioning["seconds_node_median"])
    # the same generation as the model patch, to float precision
    assert conditioning["max_abs_difference_to_id_adapter_w1"] <= 1e-4 * conditioning["latent_max_abs"]
    for variant in variants[1:]:
        overhead = one(records, "sampling_overhead", model=model, variant=variant)
        assert overhead["status"] == "ok" and math.isfinite(overhead["overhead_percent"])
    assert not lines_of(records, "sampling", model="sd21-tiny")  # SD1.5 and SDXL only


def test_faceid_embed_throughput(tiny_run):
    _, records, _ = tiny_run
    synthetic = one(records, "faceid_embed", pack="synthetic_emb512")
    assert synthetic["status"] == "ok" and synthetic["embedding_size"] == 512 and synthetic["images"] == 2
    assert finite_positive(synthetic["images_per_second"]) and finite_positive(synthetic["seconds_first_call"])
    real = one(records, "faceid_embed", pack="sface_yunet")
    if real["status"] == "ok":
        assert real["embedding_size"] == 128 and finite_positive(real["images_per_second"])
    else:
        assert real["status"] == "skipped" and real["reason"]


def test_training_step_profile_names_where_the_time_goes(tiny_run):
    _, records, _ = tiny_run
    profile = one(records, "profile_learn_id_token", model="sd15-tiny")
    assert profile["status"] == "ok" and profile["steps_averaged"] >= 1
    ms = profile["ms_per_step"]
    for key in ("step_total", "text_encoder_forward", "unet_forward", "adapter_forward", "enhancer_forward",
                "backward_total", "backward_unet", "backward_adapter", "backward_text_encoder_and_enhancer",
                "optimizer_step"):
        assert finite_positive(ms[key]), (key, ms[key])
    assert math.isfinite(ms["host_overhead_rest"]) and math.isfinite(ms["trainer_bookkeeping"])
    parts = ms["backward_unet"] + ms["backward_adapter"] + ms["backward_text_encoder_and_enhancer"]
    assert parts <= ms["backward_total"] * 1.05 + 1.0  # the split lies inside the backward
    assert profile["top_ops"] and all(op["op"] and op["self_ms_per_step"] >= 0 for op in profile["top_ops"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_stops_with_a_clear_message():
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--device", "cuda"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--device cuda" in proc.stderr and "no CUDA GPU" in proc.stderr


def test_enhancer_face_share_bench_reports_structure_and_gradients(cache_dir):
    """bench/enhancer_face_share.py (docs/design.md's measurement of what the face contributes) keeps
    running: both stages, equal rows of Z, a face share within its structural bound, every group."""
    tiny_models.tiny_sd15_checkpoint(cache_dir)
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "enhancer_face_share.py"), "--tiny", "--steps", "2",
                           "--faces", "4"], cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    initial, trained = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert initial["stage"] == "initial" and trained["stage"] == "after 2 steps"
    for record in (initial, trained):
        assert record["z_rows_equal"] is True
        assert 0 <= record["face_spread_of_z_max"] <= record["most_any_face_could_move_z"]
        weights = record["head_weight_on_anchor_token_0"]
        assert 0 <= weights["min"] <= weights["max"] <= 1
    groups = trained["gradients"]
    assert {"token_vectors.clip_l", "adapter.gamma", "expander", "query", "key_value", "output"} <= set(groups)
    assert all(finite_positive(g["rms_per_element"]) for g in groups.values())

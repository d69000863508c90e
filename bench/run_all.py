"""Single entry of the benchmarks (docs/performance.md). Prints JSON lines on stdout, one object per measurement,
never judges a time. Everything else (host logs, progress bars) goes to stderr.

  python bench/run_all.py --tiny                 CPU check on the tests' tiny models (under a minute)
  python bench/run_all.py --device cuda          full-size SD1.5 / SD2.1 / SDXL, 320 steps
  bench/gpu_all.sh                               the GPU run sized for ~8 minutes (--steps 40, projected)
  python bench/run_all.py --models flux,flux_fp8 FLUX.1-dev (bf16 / fp8 weights): node training, sampling
                                                 and the memory sweep (bench/gpu_all.sh flux)

Lines: header; learn_id_token (impl node / published_recipe, the recipe for SD only) and
learn_id_token_speedup per model; flux_memory_sweep (FLUX: peak memory and step time of the node per
resolution, batch and checkpointing, out of memory reported as status "oom");
sampling and sampling_overhead (plain / ID-Adapter weight 1 / weight 0 / ID-Adapter to Conditioning
weight 1) and id_conditioning (that node's own time, its latent against the patch's); faceid_embed; the training
profile; and a final summary. Exit status 1 when a measurement failed with an error (an out-of-memory
result is a finding, reported as status "oom", not a failure); 2 when the device is not there.
Run it with the host's venv python from anywhere but a shared temporary folder.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import harness
import measure

log = logging.getLogger("bench")

SECTIONS = ("training", "sampling", "faceid", "profile", "flux_sweep")
MODEL_KINDS = ("sd15", "sd21", "sdxl", "flux", "flux_fp8")
FLUX_KINDS = ("flux", "flux_fp8")
FULL = {"steps": 320, "batch": {"sd15": 8, "sd21": 8, "sdxl": 4, "flux": 4, "flux_fp8": 4},
        "resolution": {"sd15": 512, "sd21": 512, "sdxl": 1024, "flux": 512, "flux_fp8": 512},
        "sampling_steps": 30, "sampling_reps": 3, "faceid_images": 16, "faceid_size": 640, "profile_steps": 6,
        "flux_sweep": ((512, 1), (512, 4), (1024, 1), (1024, 4)), "sweep_checkpointing": ("on", "off"),
        "sweep_steps": 4}
TINY = {"steps": 2, "batch": {"sd15": 2, "sd21": 2, "sdxl": 2, "flux": 1, "flux_fp8": 1},
        "resolution": {"sd15": 64, "sd21": 64, "sdxl": 64, "flux": 64, "flux_fp8": 64},
        "sampling_steps": 3, "sampling_reps": 2, "faceid_images": 2, "faceid_size": 256, "profile_steps": 3,
        "flux_sweep": ((64, 1),), "sweep_checkpointing": ("off",), "sweep_steps": 2}  # "on": the training run
SAMPLING_KINDS = ("sd15", "sdxl", "flux", "flux_fp8")
# how each base is sampled: FLUX.1-dev at CFG 1 (guidance-distilled) on its simple schedule
SAMPLING_SETTINGS = {"flux": {"cfg": 1.0, "scheduler": "simple"}, "flux_fp8": {"cfg": 1.0, "scheduler": "simple"}}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models at 64 px on the CPU (the test's mode)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="cpu (default with --tiny) or cuda (default otherwise); cuda without a GPU exits 2")
    parser.add_argument("--models", default="sd15,sd21,sdxl",
                        help="comma list of sd15, sd21, sdxl, flux, flux_fp8 (FLUX.1-dev with fp8 weights)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--steps", type=int, help="node training steps (default 320; tiny 2)")
    parser.add_argument("--recipe-steps", type=int, help="published-recipe steps (default: --steps)")
    parser.add_argument("--batch", type=int, help="training batch for every model (default 8; SDXL 4; tiny 2)")
    parser.add_argument("--resolution", type=int, help="training and sampling resolution for every model "
                                                        "(default 512; SDXL 1024; tiny 64)")
    parser.add_argument("--checkpointing", default="auto",
                        help="comma list of the node's gradient_checkpointing choices to time (auto, on, off)")
    parser.add_argument("--precision", default="auto", help="the node's precision input (auto, bf16, fp16, fp32)")
    parser.add_argument("--sampling-steps", type=int, help="KSampler steps (default 30; tiny 3)")
    parser.add_argument("--sampling-reps", type=int, help="timed rounds per sampling variant")
    parser.add_argument("--profile-steps", type=int, help="node steps in the profile (the first is not counted)")
    parser.add_argument("--profile-model", default="sd15", help="the model kind the training step is profiled on")
    parser.add_argument("--sweep-steps", type=int, help="node steps per FLUX memory-sweep run (default 4; tiny 2)")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    parser.add_argument("--keep-base", action="store_true", help="keep the temporary host base directory")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.models = [m for m in args.models.split(",") if m]
    args.only = [s for s in args.only.split(",") if s]
    args.checkpointing = tuple(c for c in args.checkpointing.split(",") if c)
    unknown = ([m for m in [*args.models, args.profile_model] if m not in MODEL_KINDS]
               + [s for s in args.only if s not in SECTIONS]
               + [c for c in args.checkpointing if c not in ("auto", "on", "off")])
    if unknown:
        parser.error(f"unknown model, section or checkpointing choice: {', '.join(unknown)}")
    sizes = TINY if args.tiny else FULL
    for name in ("steps", "sampling_steps", "sampling_reps", "profile_steps", "sweep_steps"):
        if getattr(args, name) is None:
            setattr(args, name, sizes[name])
    args.recipe_steps = args.recipe_steps or args.steps
    args.sizes = sizes
    return args


def distinct_checkpointing(choices: tuple[str, ...], kind: str) -> list[str]:
    """The choices that lead to different runs (auto is on for SDXL and FLUX and off otherwise)."""
    seen, kept = set(), []
    for choice in choices:
        resolved = choice == "on" or (choice == "auto" and kind in ("sdxl", *FLUX_KINDS))
        if resolved not in seen:
            seen.add(resolved)
            kept.append(choice)
    return kept


class Run:
    """One benchmark run: the host, the reporter, and a failure count that sets the exit status."""

    def __init__(self, args, host, reporter):
        self.args, self.host, self.reporter = args, host, reporter
        self.failures = 0

    def guarded(self, section: str, model: str | None, function, *a, **k):
        """Run one section; a crash is reported as a line and counted, and the run goes on."""
        try:
            return function(*a, **k)
        except Exception as err:  # noqa: BLE001  (reported as a line, the run goes on)
            log.error("%s %s failed:\n%s", section, model or "", traceback.format_exc())
            self.reporter.emit({"bench": section, "model": model, "device": self.args.device, "status": "error",
                                "error": f"{type(err).__name__}: {err}"[:500]})
            return None

    def case(self, kind: str):
        from bench_training import TrainingCase
        a = self.args
        return TrainingCase(kind=kind, steps=a.steps, recipe_steps=a.recipe_steps,
                            batch=a.batch or a.sizes["batch"][kind],
                            resolution=a.resolution or a.sizes["resolution"][kind],
                            checkpointing=a.checkpointing, precision=a.precision)

    def model_kind(self, kind: str) -> None:
        """Node runs, sampling and profile on the models as the host loads them, then the recipe on
        the same models converted to fp32 (and back); one set of models in memory at a time."""
        import bench_training
        import sd_models
        from bench_sampling import bench_sampling
        from profile_training import profile_node
        a, case = self.args, self.case(kind)
        models = sd_models.build(kind, a.tiny)
        nodes, recipe, flux = [], None, kind in FLUX_KINDS
        try:
            if "training" in a.only:
                for choice in distinct_checkpointing(case.checkpointing, kind):
                    run_id = f"{models.label}_{choice}_{int(time.time() * 1000)}"
                    nodes.append(self.reporter.emit(bench_training.run_node(self.host, models, case, a.device,
                                                                            choice, run_id)))
            if "sampling" in a.only and kind in SAMPLING_KINDS:
                self.guarded("sampling", models.label, bench_sampling, self.host, self.reporter, models, a.device,
                             a.sampling_steps, case.resolution, a.sampling_reps, **SAMPLING_SETTINGS.get(kind, {}))
            if "flux_sweep" in a.only and flux:
                self.flux_sweep(models, case)
            if "profile" in a.only and kind == a.profile_model:
                self.guarded("profile_learn_id_token", models.label, profile_node, self.host, self.reporter,
                             models, case, a.device, a.profile_steps)
            if "training" in a.only and not flux:  # the published recipe exists for SD only
                recipe = self.reporter.emit(bench_training.run_recipe(self.host, models, case, a.device))
        finally:
            sd_models.release(models)
        for node in nodes if recipe is not None else []:
            self.reporter.emit(bench_training.speedup(node, recipe))

    def flux_sweep(self, models, case) -> None:
        """Learn ID Token on FLUX per resolution, batch and checkpointing: peak memory and step time
        (docs/flux.md's table, measured); out of memory is a finding, reported and passed over."""
        import bench_training
        from dataclasses import replace
        for resolution, batch in self.args.sizes["flux_sweep"]:
            for choice in self.args.sizes["sweep_checkpointing"]:
                sweep_case = replace(case, steps=self.args.sweep_steps, batch=batch, resolution=resolution)
                run_id = f"{models.label}_sweep_{resolution}_{batch}_{choice}_{int(time.time() * 1000)}"
                line = bench_training.run_node(self.host, models, sweep_case, self.args.device, choice, run_id)
                self.reporter.emit({**line, "bench": "flux_memory_sweep"})

    def all(self) -> None:
        from bench_faceid import bench_faceid
        for kind in self.args.models:
            self.guarded("model_kind", kind, self.model_kind, kind)
        if "faceid" in self.args.only:
            s = self.args.sizes
            self.guarded("faceid_embed", None, bench_faceid, self.host, self.reporter, self.args.device,
                         s["faceid_images"], s["faceid_size"], self.args.sampling_reps)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        harness.check_device(args.device)
    except harness.DeviceUnavailable as err:
        print(f"bench: {err}", file=sys.stderr)
        return 2
    results, sys.stdout = sys.stdout, sys.stderr  # only JSON lines go to the real stdout
    reporter = measure.Reporter(results, args.out)
    base = Path(tempfile.mkdtemp(prefix="idea-bench-base-"))
    started = time.perf_counter()
    try:
        host = harness.start_host(args.device, base)
        version = host.pack_module("idea.version").PACK_VERSION
        reporter.emit({**measure.header(args, args.device), "pack": version,
                       "host_start_seconds": round(time.perf_counter() - started, 2)})
        run = Run(args, host, reporter)
        run.all()
        failed = sum(1 for r in reporter.records if r.get("status") == "error")
        oom = sum(1 for r in reporter.records if r.get("status") == "oom")
        reporter.emit({"bench": "summary", "status": "ok" if failed == 0 else "failed", "failed": failed,
                       "out_of_memory": oom,
                       "lines": len(reporter.records), "seconds_total": round(time.perf_counter() - started, 2)})
        return 1 if failed else 0
    finally:
        reporter.close()
        sys.stdout = results
        if args.keep_base:
            log.info("kept the host base directory %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Find, load and cache a face model pack (a detector and a recogniser) in the insightface layout.

Users keep insightface model packs (antelopev2, buffalo_l) in `models/insightface/models/<pack>`.
The folder is resolved with the common nesting mistake tolerated, every `.onnx` file is routed by
its ONNX signature as insightface's model_zoo does (file names do not matter) and run by this pack's
own ONNX face runtime (idea/onnx_faces, no insightface, no OpenCV); nothing is ever downloaded.
onnxruntime is imported only when a pack is loaded.
"""
from __future__ import annotations

import functools
import importlib.metadata
import logging
import pathlib
import threading
from dataclasses import dataclass
from typing import Iterable

from .onnx_faces import FaceModelError
from .onnx_faces.arcface import ArcFaceRecognizer
from .onnx_faces.scrfd import ScrfdDetector

log = logging.getLogger(__name__)

__all__ = ["FaceModelError", "FaceModels", "PROVIDERS", "PACK_SOURCES", "list_model_packs", "resolve_model_pack",
           "load_face_models", "onnx_providers", "session_providers", "check_providers",
           "onnxruntime_distributions"]

INSTALL_HINT = ("pip install onnxruntime-gpu  (onnxruntime on macOS), with the Python that runs ComfyUI; "
                "or pip install -r custom_nodes/ComfyUI-ID-EA/requirements.txt")
ONE_ONNXRUNTIME = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
CUDA_FIX = ("install the CUDA and cuDNN libraries this onnxruntime-gpu build needs (see the console line "
            "'Failed to load library ... libonnxruntime_providers_cuda' above it and "
            "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements), or "
            "install the onnxruntime-gpu version made for your CUDA, and keep exactly one onnxruntime package "
            f"({ONE_ONNXRUNTIME}); or choose provider 'auto' or 'CPU'")
PROVIDERS = ("auto", "CPU", "CUDA")
# Where the packs ComfyUI face packs use are published (insightface's v0.7 release; licensed for
# non-commercial research only). Named in the error for a missing pack; never downloaded.
PACK_SOURCES = {"antelopev2": "https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip",
                "buffalo_l": "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"}
CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def _onnx_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.glob("*.onnx") if p.is_file())


def _pack_folder(models_dir: pathlib.Path, name: str) -> pathlib.Path | None:
    """`<models>/<name>` holding .onnx files, or the nested mistake `<models>/<name>/<name>`."""
    for candidate in (models_dir / name, models_dir / name / name):
        if candidate.is_dir() and _onnx_files(candidate):
            return candidate
    return None


def list_model_packs(insightface_roots: Iterable[pathlib.Path]) -> list[str]:
    """Names of the folders under `<root>/models/` that hold .onnx files (nesting tolerated)."""
    names: set[str] = set()
    for root in insightface_roots:
        models_dir = pathlib.Path(root) / "models"
        if not models_dir.is_dir():
            continue
        for child in models_dir.iterdir():
            if child.is_dir() and _pack_folder(models_dir, child.name) is not None:
                names.add(child.name)
    return sorted(names)


def resolve_model_pack(insightface_roots: Iterable[pathlib.Path], name: str) -> pathlib.Path:
    """The folder of pack `name`, or a FaceModelError saying where it must go and what is there."""
    roots = [pathlib.Path(r) for r in insightface_roots]
    for root in roots:
        folder = _pack_folder(root / "models", name)
        if folder is not None:
            if folder.parent.name == name:
                log.warning("insightface pack %s is nested one level too deep (%s); using it anyway",
                            name, folder)
            return folder
    expected = [str(r / "models" / name) for r in roots] or ["<ComfyUI>/models/insightface/models/" + name]
    found = list_model_packs(roots)
    source = (f" Get it from {PACK_SOURCES[name]} (non-commercial research use only) and unzip it into "
              f"{pathlib.Path(expected[0]).parent}." if name in PACK_SOURCES else "")
    raise FaceModelError(
        f"insightface model pack '{name}' not found. Put its .onnx files (a detector such as "
        f"scrfd_10g_bnkps.onnx and a recogniser such as glintr100.onnx) in: {expected[0]}"
        + (f" (also searched: {', '.join(expected[1:])})" if len(expected) > 1 else "")
        + f".{source} Packs found: {', '.join(found) if found else 'none'}.")


def onnxruntime_distributions() -> list[str]:
    """The installed distributions that provide the module `onnxruntime` (onnxruntime, onnxruntime-gpu,
    onnxruntime-directml...). They overwrite each other's files, so more than one breaks the CUDA one."""
    found = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name == "onnxruntime" or name.startswith("onnxruntime-"):
            files = dist.files  # None where the installer kept no RECORD: trust the name
            if files is None or any(str(f).replace("\\", "/") == "onnxruntime/__init__.py" for f in files):
                found.add(name)
    return sorted(found)


def warn_if_several_onnxruntimes(names: list[str]) -> bool:
    """Log the fix when more than one onnxruntime distribution is installed; True if it warned."""
    if len(names) < 2:
        return False
    log.warning("%s are installed together: they provide the same module `onnxruntime` and overwrite each other's "
                "files, which typically breaks the CUDA provider (the face models then run on the CPU or fail "
                "to load). Keep exactly one, with the Python that runs ComfyUI: %s (on macOS: onnxruntime).",
                " and ".join(names), ONE_ONNXRUNTIME)
    return True


@functools.cache
def _check_distributions_once() -> bool:
    return warn_if_several_onnxruntimes(onnxruntime_distributions())


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise FaceModelError(f"onnxruntime is not installed or does not import ({exc}); the face models "
                             f"need it. Install it with: {INSTALL_HINT}") from exc
    _check_distributions_once()
    return onnxruntime


def onnx_providers(choice: str) -> list[str]:
    """Execution providers for a user choice; CUDA that cannot run is an error, not a silent CPU."""
    available = _import_onnxruntime().get_available_providers()
    if choice == "CPU":
        return ["CPUExecutionProvider"]
    if choice == "CUDA":
        if "CUDAExecutionProvider" not in available:
            raise FaceModelError(
                "execution provider CUDA requested but onnxruntime offers only "
                f"{available}. Install onnxruntime-gpu and uninstall the CPU build "
                f"({ONE_ONNXRUNTIME}), "
                "or choose 'auto' or 'CPU'.")
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if choice != "auto":
        raise FaceModelError(f"unknown execution provider '{choice}'; choose one of {PROVIDERS}")
    return [p for p in (CUDA_PROVIDER, CPU_PROVIDER) if p in available]


def session_providers(*models) -> list[str]:
    """The providers the models' onnxruntime sessions really run on. onnxruntime-gpu lists CUDA as
    available even where its CUDA libraries do not load; a session asked for CUDA then logs the
    failure and quietly runs on the CPU, so only the created session tells the truth."""
    running: list[str] = []
    for model in models:
        running += [p for p in model.session.get_providers() if p not in running]
    return running


def check_providers(choice: str, requested: list[str], running: list[str], folder: pathlib.Path) -> None:
    """`CUDA` that did not load is an error naming the fix; `auto` says where it runs."""
    if CUDA_PROVIDER in requested and CUDA_PROVIDER not in running:
        if choice == "CUDA":
            raise FaceModelError(
                f"execution provider CUDA requested: onnxruntime offers it, but its CUDA provider failed "
                f"to load, so the face models in {folder} would run on {running}. To run them on CUDA, "
                f"{CUDA_FIX}.")
        log.warning("onnxruntime offers CUDA but its CUDA provider failed to load: the face models in %s "
                    "run on the CPU. To use CUDA, %s.", folder, CUDA_FIX)
    log.info("face models in %s run on %s (onnxruntime providers %s)", folder,
             "CUDA" if CUDA_PROVIDER in running else "the CPU", running)


@dataclass
class FaceModels:
    """A routed detector + recogniser pair, loaded once and reused across runs."""

    name: str
    folder: pathlib.Path
    detector: ScrfdDetector
    recognizer: ArcFaceRecognizer
    embedding_size: int
    providers: tuple[str, ...] = ()  # what the sessions really run on, e.g. ("CPUExecutionProvider",)
    det_size: int | None = None

    def prepare_detector(self, det_size: int, threshold: float = 0.5) -> None:
        if self.det_size != det_size:
            self.detector.prepare((det_size, det_size), threshold)
            self.det_size = det_size


_CACHE: dict[tuple[str, str], FaceModels] = {}
_LOCK = threading.Lock()


def load_face_models(folder: pathlib.Path, provider: str = "auto") -> FaceModels:
    """Route every .onnx in `folder`; keep the first detector and recogniser (sorted by file name)."""
    from .onnx_faces.routing import open_model
    key = (str(pathlib.Path(folder).resolve()), provider)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        providers = onnx_providers(provider)
        detector = recognizer = None
        for path in _onnx_files(pathlib.Path(folder)):
            model = open_model(path, providers)
            if isinstance(model, ScrfdDetector) and detector is None:
                detector = model
            elif isinstance(model, ArcFaceRecognizer) and recognizer is None:
                recognizer = model
        missing = [what for what, m in (("face detector", detector), ("recognition model", recognizer))
                   if m is None]
        if missing:
            raise FaceModelError(
                f"the insightface pack at {folder} has no {' and no '.join(missing)}. A pack needs a "
                "detector (e.g. scrfd_10g_bnkps.onnx / det_10g.onnx) and a recognition model "
                "(e.g. glintr100.onnx / w600k_r50.onnx); copy the complete antelopev2 or buffalo_l pack.")
        size = recognizer.embedding_size
        if size is None:
            raise FaceModelError(f"the recogniser in {folder} has no fixed embedding size")
        running = session_providers(detector, recognizer)
        check_providers(provider, providers, running, pathlib.Path(folder))
        models = FaceModels(pathlib.Path(folder).name, pathlib.Path(folder), detector, recognizer, size,
                            tuple(running))
        log.info("loaded face models from %s (detector %s, recogniser %s, embedding size %d)", folder,
                 detector.path.name, recognizer.path.name, size)
        _CACHE[key] = models
        return models

"""FaceID Embed throughput: photos per second through the node (detect, align, embed, crop).

No insightface pack (antelopev2, buffalo_l) exists offline. Always measured: the tests' synthetic
ONNX pack (SCRFD-layout detector, 512-d recogniser), which times the node's own work around tiny
models. Measured when the tests have cached it (never downloaded here): OpenCV-Zoo's real YuNet
detector and SFace recogniser as an insightface-layout pack, on real photos.
"""
from __future__ import annotations

import importlib.util
import logging
import statistics

import measure

log = logging.getLogger(__name__)

SYNTHETIC_PACK = "bench_synthetic"
REAL_PACK = "bench_sface_yunet"
REAL_PHOTOS = ("obama", "obama2", "obama3", "biden")
REAL_MIN_SIZE = 384  # squeezed to a square, smaller photos hold faces under the node's 64 px minimum


def _synthetic_photos(count: int, size: int):
    from support.images import to_image_tensor
    from support.synthetic_faces import noise_image
    return to_image_tensor(*(noise_image(size, size, seed=i) for i in range(count)))


def _real_photos_if_cached(size: int):
    """The real photos at one size, or None when the tests have not cached them and the models."""
    from support import real_faces
    from support.images import resize_to, to_image_tensor
    models = real_faces.root() / "models"
    photos = [real_faces.root() / "photos" / real_faces.PHOTOS[n][0] for n in REAL_PHOTOS]
    if not all(p.exists() for p in [models / real_faces.DET_FILE, models / real_faces.REC_FILE, *photos]):
        return None
    return to_image_tensor(*(resize_to(real_faces.load_photo(n), (size, size)) for n in REAL_PHOTOS))


def _measure(host, reporter, pack: str, kind: str, images, provider: str, reps: int, device: str,
             crop_size: int) -> None:
    inputs = {"images": images, "model_pack": pack, "provider": provider, "face_selection": "largest",
              "face_index": 0, "detection_size": 640, "crop_size": crop_size,
              "on_mismatch": "warn"}  # the real photos show two people on purpose: time all of them
    start = measure.now(device)
    face = host.run("IDEA_FaceIDEmbed", **inputs)[0]  # loads the pack (cached by the node)
    first = measure.now(device) - start
    times = []
    for _ in range(reps):
        start = measure.now(device)
        host.run("IDEA_FaceIDEmbed", **inputs)
        times.append(measure.now(device) - start)
    count = int(images.shape[0])
    median = statistics.median(times)
    reporter.emit({"bench": "faceid_embed", "pack": kind, "device": device, "provider": provider,
                   "images": count, "image_size": int(images.shape[1]), "crop_size": crop_size,
                   "embedding_size": face.dim, "reps": reps, "status": "ok",
                   "seconds_first_call": round(first, 4), "seconds_median": round(median, 4),
                   "images_per_second": round(count / median, 2)})


def bench_faceid(host, reporter, device: str, count: int, size: int, reps: int) -> None:
    missing = [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
    if missing:  # e.g. a GPU image without the face stack (onnx writes the synthetic pack)
        reporter.emit({"bench": "faceid_embed", "pack": "synthetic_emb512", "device": device,
                       "status": "skipped", "reason": f"{' and '.join(missing)} not installed here"})
        return
    from support import real_faces
    from support.synthetic_faces import face_in_box, write_synthetic_pack
    provider = "auto" if device == "cuda" else "CPU"
    crop_size = 512
    models_root = host.base / "models"
    box, kps = face_in_box(size * 0.3, size * 0.25, size * 0.4)
    write_synthetic_pack(models_root, SYNTHETIC_PACK, [(box, kps)], image_hw=(size, size), emb_dim=512)
    _measure(host, reporter, SYNTHETIC_PACK, "synthetic_emb512", _synthetic_photos(count, size), provider,
             reps, device, crop_size)
    photos = _real_photos_if_cached(max(size, REAL_MIN_SIZE))
    if photos is None:
        log.info("real SFace/YuNet pack or photos not cached by the tests; measuring the synthetic pack only")
        reporter.emit({"bench": "faceid_embed", "pack": "sface_yunet", "device": device,
                       "status": "skipped", "reason": "not cached by the test suite (run make test once)"})
        return
    real_faces.write_real_pack(models_root, REAL_PACK)
    _measure(host, reporter, REAL_PACK, "sface_yunet", photos, provider, reps, device, crop_size)

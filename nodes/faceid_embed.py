"""FaceID Embed: photos -> the face embedding (and aligned crops to look at and to train on)."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..idea.face_agreement import ACTIONS, check_references
from ..idea.face_framing import DEFAULT_FRAMING, FRAMING_TOOLTIP, FRAMINGS
from ..idea.face_pipeline import embed_photos
from .schema.face_model_inputs import (check_model_pack, detection_size_input, face_selection_inputs, load_pack,
                                model_pack_input, provider_input)
from .schema.search_words import search_aliases
from .types import FaceEmbeddingType


class FaceIDEmbed(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_FaceIDEmbed",
            display_name="FaceID Embed (Face Embedding)",
            category="ID-EA",
            **search_aliases("face id", "faceid", "face embedding", "insightface", "arcface", "antelopev2",
                             "IPAdapter face", "InstantID", "PuLID", "identity"),
            description="Detects, aligns and embeds the face in each photo with an insightface model pack "
                        "from models/insightface/models/. Give one or a few photos of the same person: each "
                        "is compared with the others, and one that looks like someone else is named.",
            inputs=[
                io.Image.Input("images", tooltip="One or more photos of the person (an image batch)."),
                model_pack_input("insightface model pack folder under models/insightface/models/ "
                                 "(antelopev2 or buffalo_l); it needs a detector and a recogniser."),
                provider_input(),
                *face_selection_inputs("to use"),
                detection_size_input(),
                io.Int.Input("crop_size", default=512, min=64, max=2048, step=64,
                             tooltip="Side of the aligned face crops, which Learn ID Token trains on: 512 "
                                     "for SD1.x/SD2.x training, 1024 for SDXL."),
                # optional: prompts written before these inputs existed still run, with the defaults
                io.Combo.Input("on_mismatch", options=list(ACTIONS), default="stop", optional=True,
                               tooltip="When a photo looks like another person than the others: stop with an "
                                       "error naming it, warn and use all photos, or drop the odd photos."),
                io.Float.Input("min_agreement", default=0.0, min=0.0, max=1.0, step=0.01, optional=True,
                               tooltip="Cosine of a photo with the mean of the others below which it counts "
                                       "as another person; 0 = by recogniser (0.40 SFace, 0.25 ArcFace packs)."),
                io.Combo.Input("framing", options=list(FRAMINGS), default=DEFAULT_FRAMING, optional=True,
                               tooltip=FRAMING_TOOLTIP),
            ],
            outputs=[
                FaceEmbeddingType.Output("face_embedding", display_name="face_embedding",
                                         tooltip="Per-photo and mean face embeddings with the model's name "
                                                 "and size, scores and keypoints."),
                io.Image.Output("aligned_faces", display_name="aligned_faces",
                                tooltip="Square, face-centred crops at the chosen framing, one per photo: "
                                        "exactly what Learn ID Token trains on."),
                io.String.Output("agreement", display_name="agreement",
                                 tooltip="Per photo: its cosine with the mean of the other photos, and which "
                                         "photos were dropped or let through."),
            ],
        )

    @classmethod
    def execute(cls, images, model_pack, provider, face_selection, face_index, detection_size,
                crop_size, on_mismatch="stop", min_agreement=0.0, framing=DEFAULT_FRAMING) -> io.NodeOutput:
        models = load_pack(model_pack, provider)
        embedding, crops = embed_photos(models, images, det_size=detection_size, selection=face_selection,
                                        index=face_index, crop_size=crop_size, framing=framing)
        embedding, crops, text = check_references(embedding, crops, on_mismatch, min_agreement)
        return io.NodeOutput(embedding, crops, text, ui=ui.PreviewText(text))

    @classmethod
    def validate_inputs(cls, model_pack) -> bool | str:
        return check_model_pack(model_pack)

"""Face Similarity: a likeness number for generated images against the FaceID Embed reference."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..idea.likeness import face_similarity
from .schema.face_model_inputs import (SAME_AS_REFERENCE, check_model_pack, detection_size_input, face_selection_inputs,
                                load_pack, model_pack_input, provider_input)
from .schema.search_words import search_aliases
from .types import FaceEmbeddingType


class FaceSimilarity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_FaceSimilarity",
            display_name="Face Similarity",
            category="ID-EA",
            **search_aliases("likeness", "face id", "face compare", "identity similarity", "cosine similarity",
                             "face score", "identity"),
            description="Scores how much the largest face in each image (or, with several people, the one "
                        "at a chosen position) looks like the reference person: the cosine similarity of face "
                        "embeddings, higher is more alike; compare numbers only within one model pack. Images "
                        "without that face count as misses, not errors.",
            is_output_node=True,
            inputs=[
                io.Image.Input("images", tooltip="Generated images to score (an image batch)."),
                FaceEmbeddingType.Input("reference", tooltip="The reference face embedding from FaceID Embed."),
                model_pack_input("The insightface model pack under models/insightface/models/: 'same as "
                                 "reference' uses the one FaceID Embed embedded the reference with (only "
                                 "numbers from one pack compare).", follow_reference=True),
                provider_input(),
                detection_size_input(),
                *face_selection_inputs("to score", optional=True),
            ],
            outputs=[
                io.Float.Output("similarities", display_name="similarities", is_output_list=True,
                                tooltip="One cosine similarity per image, 0.0 where no face was found (a list: "
                                        "a node wired to it runs once per image)."),
                io.Float.Output("mean_similarity", display_name="mean_similarity",
                                tooltip="Mean similarity over the images in which a face was found "
                                        "(0.0 if none)."),
                io.Float.Output("face_found_share", display_name="face_found_share",
                                tooltip="Share of the images (0..1) in which a face was found."),
                io.String.Output("summary", display_name="summary",
                                 tooltip="The numbers as text, e.g. 'image 1: 0.78, image 2: no face; mean 0.78 "
                                         "over 1/2 images with a face'; also shown on the node."),
            ],
        )

    @classmethod
    def execute(cls, images, reference, model_pack, provider, detection_size, face_selection="largest",
                face_index=0) -> io.NodeOutput:
        pack = reference.model_name if model_pack == SAME_AS_REFERENCE else model_pack
        models = load_pack(pack, provider)
        report = face_similarity(models, images, reference, det_size=detection_size, selection=face_selection,
                                 index=face_index)
        text = report.text()
        return io.NodeOutput(report.per_image(), report.mean, report.face_share, text,
                             ui=ui.PreviewText(text))

    @classmethod
    def validate_inputs(cls, model_pack) -> bool | str:
        return check_model_pack(model_pack)

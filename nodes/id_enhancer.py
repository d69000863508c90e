"""ID-Enhancer: the face embedding fused with the textual ID anchor of the user's own text encoder."""
from __future__ import annotations

from comfy_api.latest import io

from ..idea.anchor import NAME_LIST_PATH, load_name_list
from ..idea.identity import IdentityEmbedding
from .host.text_encoders import encoder_layers, read_clip
from .host.textual_anchor import textual_anchor
from .schema.search_words import search_aliases
from .types import FaceEmbeddingType, IdentityType


class IDEnhancerNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_IDEnhancer",
            display_name="ID-Enhancer (New Identity)",
            category="ID-EA",
            **search_aliases("identity", "new identity", "face id", "textual inversion", "ID-EA"),
            description="Builds an untrained identity: the textual ID anchor (celebrity-name tokens through "
                        "your text encoder), the initial identity-token vectors, and the ID-Enhancer that "
                        "fuses the face embedding into identity-enhanced tokens. Train it with Learn ID Token.",
            inputs=[
                FaceEmbeddingType.Input("face_embedding", tooltip="From FaceID Embed."),
                io.Clip.Input("clip", tooltip="The text encoder of the checkpoint you will generate with "
                                              "(SD1.x, SD2.x, SDXL, or FLUX.1's T5-XXL + CLIP-L from "
                                              "DualCLIPLoader: experimental); clip skip is respected."),
                io.Int.Input("num_tokens", default=2, min=1, max=8,
                             tooltip="Number of learned identity tokens (the paper uses 2)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the Enhancer's and Adapter's initial weights."),
                io.Boolean.Input("train_enhancer", default=True,
                                 tooltip="Train the Enhancer with the tokens (the paper's description). Off "
                                         "keeps it at its seeded initialisation, as the authors' code does."),
            ],
            outputs=[IdentityType.Output("identity", display_name="identity",
                                         tooltip="The identity to train with Learn ID Token.")],
        )

    @classmethod
    def execute(cls, face_embedding, clip, num_tokens, seed, train_enhancer) -> io.NodeOutput:
        layout = read_clip(clip)
        names = load_name_list()
        anchor, initial = textual_anchor(clip, layout, num_tokens, names=names)
        identity = IdentityEmbedding.create(
            layout.arch, initial, anchor, face_embedding.mean, face_embedding.model_name, seed=seed,
            train_enhancer=train_enhancer, clip_layers=encoder_layers(clip, layout),
            metadata={"anchor_names": f"{NAME_LIST_PATH.name} ({len(names)} names)",
                      "face_model": face_embedding.model_name, "face_embedding_size": face_embedding.dim,
                      "reference_photos": face_embedding.count, "framing": face_embedding.framing})
        return io.NodeOutput(identity)

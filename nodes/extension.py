"""The v3 extension the host loads: registers this pack's model folders and lists its nodes.

`override` comes from typing_extensions (typing.override is Python 3.12+): torch depends on it and the
host's own comfy_api imports it, so every host this pack runs in has it."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io
from typing_extensions import override

from .apply_id_adapter import ApplyIDAdapter
from .apply_id_adapter_conditioning import ApplyIDAdapterConditioning
from .face_similarity import FaceSimilarity
from .faceid_embed import FaceIDEmbed
from .host import model_folders
from .id_enhancer import IDEnhancerNode
from .learn_id_token import LearnIDToken
from .load_identity import LoadIdentity


class IDEAExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [FaceIDEmbed, FaceSimilarity, IDEnhancerNode, LearnIDToken, LoadIdentity, ApplyIDAdapter,
                ApplyIDAdapterConditioning]


async def comfy_entrypoint() -> ComfyExtension:
    model_folders.register()
    return IDEAExtension()

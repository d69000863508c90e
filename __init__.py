"""ComfyUI-ID-EA: learn and apply a person's identity with ID-EA (arXiv 2507.11990).

The host finds `comfy_entrypoint` here; everything host-facing lives in nodes/, the method in idea/.
WEB_DIRECTORY holds the one frontend extension: Face Similarity's summary and FaceID Embed's
agreement, shown on the node.
"""
from .nodes.extension import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]

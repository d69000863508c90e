"""ComfyUI-ID-EA: learn and apply a person's identity with ID-EA (arXiv 2507.11990).

The host finds `comfy_entrypoint` here; everything host-facing lives in nodes/, the method in idea/.
"""
from .nodes.extension import comfy_entrypoint

__all__ = ["comfy_entrypoint"]

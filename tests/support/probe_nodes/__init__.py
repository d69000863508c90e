"""Test-only nodes that hand this pack the odd IMAGE batches other packs can produce, so that those
inputs reach it through the real server: one-channel images, an empty batch, NaN pixels.
Loaded only by the servers of tests/test_input_matrix_server.py (linked into their custom_nodes/)."""
import torch


class KeepChannels:
    """[B,H,W,3] -> [B,H,W,1] (their mean, a grey image) or [B,H,W,4] (an opaque alpha added)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "channels": ([1, 4], {"tooltip": "channels out"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "IDEA tests"

    def run(self, images, channels):
        if int(channels) == 1:
            return (images[..., :3].mean(-1, keepdim=True),)
        return (torch.cat([images[..., :3], torch.ones_like(images[..., :1])], dim=-1),)


class EmptyBatch:
    """The batch with every image removed: [0,H,W,C]."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "IDEA tests"

    def run(self, images):
        return (images[:0],)


class PoisonImage:
    """The batch with image `index` set to NaN, as a broken upstream node might leave it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "index": ("INT", {"default": 1, "min": 0, "max": 63})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "IDEA tests"

    def run(self, images, index):
        out = images.clone()
        out[index] = float("nan")
        return (out,)


NODE_CLASS_MAPPINGS = {"IDEATest_KeepChannels": KeepChannels, "IDEATest_EmptyBatch": EmptyBatch,
                       "IDEATest_PoisonImage": PoisonImage}

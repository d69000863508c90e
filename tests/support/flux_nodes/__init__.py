"""Test-only node that loads the small FLUX.1-dev of tests/support/tiny_flux.py in the real server, as
UNETLoader + DualCLIPLoader (type flux) would load real FLUX.1 files: the host's detection and loading
for the transformer, comfy.sd.load_clip for the text encoders with the host's config overrides that
make them small (DualCLIPLoader has no input for those). The VAE comes through the core VAELoader.
Linked into the custom_nodes/ of tests/test_flux_server.py's server only."""
import pathlib
import sys

_TESTS = str(pathlib.Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from support import tiny_flux  # noqa: E402


class LoadTinyFlux:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("MODEL", "CLIP")
    FUNCTION = "load"
    CATEGORY = "IDEA tests"

    def load(self):
        files = tiny_flux.tiny_flux_files()
        return tiny_flux.load_dit(files["dit"]), tiny_flux.load_clip(files)


NODE_CLASS_MAPPINGS = {"IDEA_TEST_LoadTinyFlux": LoadTinyFlux}

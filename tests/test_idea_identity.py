"""Plain-torch tests of the identity value and its .safetensors file: what trains, bit-exact round
trips, and that every kind of bad file is refused with a message saying what is wrong."""
from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from idea.identity import IdentityEmbedding
from idea.identity_file import IdentityFileError, load_identity
from idea.identity_format import checksum
from idea.identity_writing import save_embedding_for_prompts, save_identity
from idea.version import PACK_VERSION
from idea.regulariser import MahalanobisRegulariser

TINY_WIDTHS = {"sd1": {"clip_l": 16}, "sd2": {"clip_h": 24}, "sdxl": {"clip_l": 16, "clip_g": 24}}


def randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def make_identity(arch="sdxl", train_enhancer=True, face_dim=12, tokens=2) -> IdentityEmbedding:
    widths = TINY_WIDTHS[arch]
    initial = {key: randn(tokens, width, seed=index) for index, (key, width) in enumerate(widths.items())}
    anchor = randn(tokens, sum(widths.values()), seed=7)
    return IdentityEmbedding.create(arch, initial, anchor, randn(face_dim, seed=8), "antelopev2", seed=3,
                                    train_enhancer=train_enhancer, metadata={"steps": 320, "lr": 0.012,
                                                                             "templates": ["a photo of a {}"]})


def trained(identity: IdentityEmbedding) -> IdentityEmbedding:
    """Move every trainable value off its initial value, so an unsaved tensor shows in a round trip."""
    with torch.no_grad():
        for index, key in enumerate(identity.encoder_keys):
            identity.token_vectors[key] += 0.1 * randn(*identity.token_vectors[key].shape, seed=20 + index)
        for index, parameter in enumerate([*identity.adapter.parameters(), *identity.enhancer.parameters()]):
            parameter += 0.01 * randn(*parameter.shape, seed=40 + index)
    return identity


# --- the identity value --------------------------------------------------------------------------

@pytest.mark.parametrize("train_enhancer", [True, False])
def test_gradients_reach_exactly_the_trainable_tensors(train_enhancer):
    identity = make_identity(train_enhancer=train_enhancer)
    trainable = identity.make_trainable()
    with torch.no_grad():
        identity.adapter.gamma.fill_(0.5)
    encoders = {key: randn(vectors.shape[1], vectors.shape[1], seed=60 + index)
                for index, (key, vectors) in enumerate(identity.token_vectors.items())}
    context_parts = []
    for key in identity.encoder_keys:  # a frozen stand-in for the text encoder: [prefix, v0, v1, suffix]
        width = identity.token_vectors[key].shape[1]
        sequence = torch.cat([randn(3, width, seed=80), identity.token_vectors[key], randn(4, width, seed=81)])
        context_parts.append(torch.tanh(sequence @ encoders[key]))
    context = torch.cat(context_parts, dim=-1).unsqueeze(0)
    loss = identity.adapter(context, identity.fused_tokens()).square().mean()
    for key in identity.encoder_keys:
        loss = loss + MahalanobisRegulariser(identity.initial_vectors[key])(identity.token_vectors[key])
    loss.backward()

    expected = [*identity.token_vectors.values(), *identity.adapter.parameters()]
    expected += list(identity.enhancer.parameters()) if train_enhancer else []
    assert {id(t) for t in trainable.values()} == {id(t) for t in expected}
    for tensor in expected:
        assert tensor.grad is not None and torch.count_nonzero(tensor.grad) > 0
    fixed = [identity.anchor, identity.face_mean, *identity.initial_vectors.values(), *encoders.values()]
    fixed += [] if train_enhancer else list(identity.enhancer.parameters())
    for tensor in fixed:
        assert not tensor.requires_grad and tensor.grad is None


def test_create_starts_tokens_at_initial_values_without_sharing_storage():
    identity = make_identity()
    for key in identity.encoder_keys:
        assert torch.equal(identity.token_vectors[key], identity.initial_vectors[key])
        assert identity.token_vectors[key].data_ptr() != identity.initial_vectors[key].data_ptr()
    assert (identity.ctx_dim, identity.num_tokens, identity.face_dim) == (40, 2, 12)
    assert identity.fused_tokens().shape == (2, 40)


def test_identity_refuses_parts_that_do_not_fit():
    good = make_identity("sdxl")
    with pytest.raises(ValueError, match="need keys"):
        IdentityEmbedding.create("sd1", good.initial_vectors, good.anchor, good.face_mean, "antelopev2")
    with pytest.raises(ValueError, match="add up to"):
        IdentityEmbedding.create("sdxl", good.initial_vectors, randn(2, 48), good.face_mean, "antelopev2")
    with pytest.raises(ValueError, match="unknown base architecture"):
        IdentityEmbedding.create("sd3", good.initial_vectors, good.anchor, good.face_mean, "antelopev2")


def test_clone_is_independent():
    original = make_identity()
    copy = original.clone()
    with torch.no_grad():
        copy.token_vectors["clip_l"] += 1.0
        copy.adapter.gamma.fill_(2.0)
    copy.metadata["steps"] = 1
    assert not torch.equal(copy.token_vectors["clip_l"], original.token_vectors["clip_l"])
    assert float(original.adapter.gamma.detach()) == 0.0 and original.metadata["steps"] == 320


# --- identity files ------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["sd1", "sd2", "sdxl"])
def test_save_then_load_is_bit_exact(tmp_path, arch):
    identity = trained(make_identity(arch, train_enhancer=(arch != "sd2")))
    path = tmp_path / "person.safetensors"
    save_identity(identity, path)
    loaded = load_identity(path, expected_arch=arch, expected_ctx_dim=identity.ctx_dim)
    for key in identity.encoder_keys:
        assert torch.equal(loaded.token_vectors[key], identity.token_vectors[key])
        assert torch.equal(loaded.initial_vectors[key], identity.initial_vectors[key])
    assert torch.equal(loaded.anchor, identity.anchor) and torch.equal(loaded.face_mean, identity.face_mean)
    for module_name in ("adapter", "enhancer"):
        saved_state = getattr(identity, module_name).state_dict()
        loaded_state = getattr(loaded, module_name).state_dict()
        assert saved_state.keys() == loaded_state.keys()
        assert all(torch.equal(saved_state[name], loaded_state[name]) for name in saved_state)
    assert torch.equal(loaded.fused_tokens(), identity.fused_tokens())
    assert loaded.metadata == identity.metadata
    assert (loaded.arch, loaded.face_model_name, loaded.train_enhancer, loaded.seed) == \
           (identity.arch, identity.face_model_name, identity.train_enhancer, identity.seed)
    assert (loaded.adapter.beta, loaded.adapter.heads, loaded.enhancer.heads) == (0.4, 8, 8)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        assert not {"clip_l", "clip_h", "clip_g"} & set(handle.keys())
    assert metadata["idea.pack_version"] == PACK_VERSION and metadata["idea.format_version"] == "1"
    assert json.loads(metadata["idea.training"]) == identity.metadata


def test_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "person.safetensors"
    save_identity(make_identity(), path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_identity(trained(make_identity()), path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_embedding_for_prompts({"clip_l": randn(2, 16)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["person.safetensors"]  # no temp files left behind
    save_identity(trained(make_identity()), path, overwrite=True)
    assert path.read_bytes() != before


def test_non_finite_identity_is_not_saved(tmp_path):
    identity = make_identity()
    with torch.no_grad():
        identity.token_vectors["clip_g"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="inf or nan"):
        save_identity(identity, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


@pytest.fixture()
def saved_path(tmp_path):
    path = tmp_path / "person.safetensors"
    save_identity(trained(make_identity()), path)
    return path


def refusal(path, **expected) -> str:
    with pytest.raises(IdentityFileError) as caught:
        load_identity(path, **expected)
    return str(caught.value)


@pytest.mark.parametrize("keep_fraction", [0.0, 0.004, 0.5, 0.999])
def test_truncated_files_are_refused(saved_path, keep_fraction):
    data = saved_path.read_bytes()
    saved_path.write_bytes(data[:int(len(data) * keep_fraction)])
    message = refusal(saved_path)
    assert ("truncated" in message or "damaged" in message) and "only ID-EA .safetensors" in message


@pytest.mark.parametrize("where", ["length prefix", "header start", "header middle", "header end", "tensor data"])
def test_flipped_bytes_are_refused(saved_path, where):
    data = bytearray(saved_path.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    position = {"length prefix": 1, "header start": 12, "header middle": header_end // 2,
                "header end": header_end - 3, "tensor data": (header_end + len(data)) // 2}[where]
    data[position] ^= 0x5A
    saved_path.write_bytes(bytes(data))
    message = refusal(saved_path)
    assert any(word in message for word in ("corrupted", "damaged", "truncated", "not a safetensors"))
    assert "only ID-EA .safetensors" in message or "metadata" in message


class LeavesATrace:
    """Unpickling this creates a folder: a stand-in for the code a hostile pickle would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pickles_are_refused_without_being_unpickled(tmp_path):
    zipped, raw = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    torch.save({"clip_l": randn(2, 16), "payload": LeavesATrace(tmp_path / "ran_from_zip")}, zipped)
    raw.write_bytes(pickle.dumps({"clip_l": [1.0, 2.0], "payload": LeavesATrace(tmp_path / "ran_from_pickle")},
                                 protocol=4))
    assert "zip archive" in refusal(zipped) and "torch.save" in refusal(zipped)
    assert "pickle" in refusal(raw) and "only ID-EA .safetensors" in refusal(raw)
    assert not (tmp_path / "ran_from_zip").exists() and not (tmp_path / "ran_from_pickle").exists()
    pickle.loads(raw.read_bytes())  # the payload is live: unpickling it does leave the trace
    assert (tmp_path / "ran_from_pickle").is_dir()


def rewrite(path, edit_metadata=None, drop=None, poison=None, fix_checksum=True):
    """Re-save a valid file with one thing changed; optionally with a matching checksum, so the
    refusal tested is the specific check and not the checksum."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys() if name != drop}
    (edit_metadata or (lambda m: None))(metadata)
    if poison:
        tensors[poison][0] = float("inf")
    if fix_checksum:
        metadata["idea.checksum"] = checksum(tensors, metadata)
    path.write_bytes(safetensors.torch.save(tensors, metadata=metadata))


def test_unknown_format_version_is_refused(saved_path):
    rewrite(saved_path, lambda m: m.update({"idea.format_version": "99"}), fix_checksum=False)
    message = refusal(saved_path)
    assert "format version '99'" in message and "update" in message


def test_unknown_architecture_is_refused(saved_path):
    rewrite(saved_path, lambda m: m.update({"idea.arch": "sd3"}))
    assert "unknown base architecture 'sd3'" in refusal(saved_path)


def test_changed_metadata_fails_the_checksum(saved_path):
    rewrite(saved_path, lambda m: m.update({"idea.face_model_name": "buffalo_l"}), fix_checksum=False)
    assert "checksum" in refusal(saved_path)


def test_missing_or_non_finite_tensors_are_refused(saved_path, tmp_path):
    other = tmp_path / "other.safetensors"
    other.write_bytes(saved_path.read_bytes())
    rewrite(saved_path, drop="adapter.gamma")
    assert "'adapter.gamma' is missing" in refusal(saved_path)
    rewrite(other, poison="anchor")
    assert "'anchor' is not a finite" in refusal(other)


def test_wrong_base_model_is_named(saved_path):
    message = refusal(saved_path, expected_arch="sd1")
    assert "trained on SDXL (context size 40)" in message and "SD1.x" in message
    assert "context size is 768" in refusal(saved_path, expected_ctx_dim=768)


def test_prompt_embedding_is_not_an_identity_and_loads_in_host_format(tmp_path):
    path = tmp_path / "person_tokens.safetensors"
    vectors = {"clip_l": randn(2, 768), "clip_g": randn(2, 1280, seed=1)}
    save_embedding_for_prompts(vectors, path)
    stored = safetensors.torch.load_file(str(path))
    assert stored.keys() == vectors.keys()
    assert all(torch.equal(stored[key], vectors[key]) for key in vectors)
    assert "without ID-EA identity metadata" in refusal(path)
    with pytest.raises(ValueError, match="keys among"):
        save_embedding_for_prompts({"token_vectors.clip_l": randn(2, 768)}, tmp_path / "x.safetensors")


def test_a_safetensors_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    """Found by training: a header of 0x0280 bytes starts the file with 0x80 0x02, like a pickle."""
    header = b'{"__metadata__":{"note":"x"}}'.ljust(0x0280, b" ")
    path = tmp_path / "header_0x280.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    assert path.read_bytes()[:2] == b"\x80\x02"
    message = refusal(path)
    assert "pickle" not in message and "ID-EA" in message

"""Plain-torch tests of the ID-EA math: adapter, enhancer, regulariser and anchor columns.

Every reference is written out here by hand (explicit matrices, softmax, pinv) rather than by calling
the code under test, so a wrong formula in idea/ cannot make its own test pass.
"""
from __future__ import annotations

import hashlib
import math
import pathlib
import re

import pytest
import torch

from idea.adapter import CHUNK_TOKENS, IDAdapter, adapt_by_chunks
from idea.anchor import NAME_LIST_PATH, column_means, load_name_list
from idea.enhancer import IDEnhancer
from idea.regulariser import MahalanobisRegulariser


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def affine(layer, x):
    return x @ layer.weight.T + layer.bias


def reference_attention(q, k, v, heads):
    """softmax(q k^T / sqrt(d_head)) v per head, written without scaled_dot_product_attention."""
    batch, q_len, dim = q.shape
    head_dim = dim // heads
    out = torch.empty_like(q)
    for h in range(heads):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(1, 2) / math.sqrt(head_dim)
        out[:, :, cols] = torch.softmax(scores, dim=-1) @ v[:, :, cols]
    return out


def reference_adapter(adapter, y, z, weight):
    tokens = torch.cat([y, affine(adapter.id_projection, z)], dim=1)
    mixed = reference_attention(affine(adapter.to_q, tokens), affine(adapter.to_k, tokens),
                                affine(adapter.to_v, tokens), adapter.heads)
    update = affine(adapter.to_out, mixed)[:, :y.shape[1]]
    return y + weight * adapter.beta * math.tanh(float(adapter.gamma.detach())) * update


# --- ID-Adapter ----------------------------------------------------------------------------------

def test_adapter_at_gamma_zero_returns_the_context_itself():
    adapter = IDAdapter(32, seed=1)
    context = randn(2, 77, 32, dtype=torch.float32)
    context[0, 3, 5] = float("inf")
    context[1, 7, 2] = float("nan")
    with torch.no_grad():
        out = adapter(context, randn(2, 32, seed=2, dtype=torch.float32))
    assert out is context


def test_adapter_at_weight_zero_is_exact_even_while_training():
    adapter = IDAdapter(32, seed=1)
    with torch.no_grad():
        adapter.gamma.fill_(0.7)
    context = randn(1, 77, 32, dtype=torch.float32)
    context[0, 0, 0] = float("inf")
    out = adapter(context, randn(2, 32, seed=2, dtype=torch.float32), weight=0.0)
    assert out is context


def test_adapter_at_gamma_zero_in_training_is_exact_and_gamma_gets_a_gradient():
    adapter = IDAdapter(32, seed=1)
    context = randn(2, 10, 32, dtype=torch.float32)
    out = adapter(context, randn(2, 32, seed=2, dtype=torch.float32))
    assert torch.equal(out, context)
    out.square().sum().backward()
    assert adapter.gamma.grad is not None and adapter.gamma.grad.abs() > 0


@pytest.mark.parametrize("batched_tokens", [False, True])
def test_adapter_matches_hand_written_attention(batched_tokens):
    adapter = IDAdapter(32, heads=8, beta=0.4, seed=3).double()
    with torch.no_grad():
        adapter.gamma.fill_(0.9)
    y = randn(2, 77, 32, seed=4)
    z = randn(2, 2, 32, seed=5) if batched_tokens else randn(2, 32, seed=5)
    z_rows = z if batched_tokens else z.unsqueeze(0).expand(2, -1, -1)
    with torch.no_grad():
        out = adapter(y, z, weight=0.6)
    expected = reference_adapter(adapter, y, z_rows, 0.6)
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(out, y)


def test_adapter_follows_the_context_dtype():
    adapter = IDAdapter(32, seed=3)
    with torch.no_grad():
        adapter.gamma.fill_(0.5)
    y = randn(1, 12, 32, seed=6, dtype=torch.float32).to(torch.bfloat16)
    z = randn(2, 32, seed=7, dtype=torch.float32)
    with torch.no_grad():
        out = adapter(y, z)
        expected = reference_adapter(adapter.double(), y.double(), z.double().unsqueeze(0), 1.0)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.double(), expected, rtol=2e-2, atol=2e-2)


def test_heads_must_divide_the_context_size():
    with pytest.raises(ValueError, match="must divide"):
        IDAdapter(20, heads=8)
    with pytest.raises(ValueError, match="must divide"):
        IDEnhancer(512, 20, heads=8)


def test_long_contexts_are_adapted_window_by_window_whatever_the_repetition():
    """Each window against all of Z, by hand; a context the host repeated gives the repeated result."""
    adapter = IDAdapter(32, seed=5).double()
    with torch.no_grad():
        adapter.gamma.fill_(0.9)
        y, z = randn(2, 12, 32, seed=6), randn(2, 2, 32, seed=7)
        out = adapt_by_chunks(adapter, y, z, 0.8, chunk_tokens=4)
        repeated = adapt_by_chunks(adapter, y.repeat(1, 2, 1), z, 0.8, chunk_tokens=4)
        whole = adapter(y, z, 0.8)
        single = adapt_by_chunks(adapter, y[:, :4], z, 0.8, chunk_tokens=4)
    expected = torch.cat([reference_adapter(adapter, y[:, i:i + 4], z, 0.8) for i in (0, 4, 8)], dim=1)
    torch.testing.assert_close(out, expected)
    assert torch.equal(repeated, out.repeat(1, 2, 1))
    assert (whole - out).abs().max() > 1e-3  # one pass over all 12 tokens is another result
    assert torch.equal(single, adapter(y[:, :4], z, 0.8))  # one window: exactly the adapter's call
    assert CHUNK_TOKENS == 77


# --- ID-Enhancer ---------------------------------------------------------------------------------

def test_enhancer_matches_hand_written_attention():
    enhancer = IDEnhancer(16, 32, num_tokens=3, heads=8, seed=8).double()
    face, anchor = randn(16, seed=9), randn(3, 32, seed=10)
    with torch.no_grad():
        z = enhancer(face, anchor)
    queries = affine(enhancer.query, affine(enhancer.expander, face).expand(3, -1)).unsqueeze(0)
    keys_values = affine(enhancer.key_value, anchor).unsqueeze(0)
    expected = affine(enhancer.output, reference_attention(queries, keys_values, keys_values, 8))[0]
    assert torch.allclose(z, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ctx_dim", [768, 1024, 2048])
@pytest.mark.parametrize("face_dim", [128, 512])
def test_module_shapes_for_real_sizes(ctx_dim, face_dim):
    enhancer = IDEnhancer.seeded(face_dim, ctx_dim, num_tokens=2, seed=0)
    adapter = IDAdapter(ctx_dim)
    with torch.no_grad():
        adapter.gamma.fill_(0.3)
        anchor = torch.randn(2, ctx_dim)
        z = enhancer(torch.randn(face_dim), anchor)
        z_batched = enhancer(torch.randn(3, face_dim), anchor)
        out = adapter(torch.randn(3, 77, ctx_dim), z)
        out_batched = adapter(torch.randn(3, 154, ctx_dim), z_batched)
    assert z.shape == (2, ctx_dim) and z_batched.shape == (3, 2, ctx_dim)
    assert out.shape == (3, 77, ctx_dim) and out_batched.shape == (3, 154, ctx_dim)


def test_seeded_modules_are_reproducible_and_leave_the_global_rng_alone():
    before = torch.get_rng_state()
    first, again, other = (IDEnhancer.seeded(64, 32, 2, seed) for seed in (11, 11, 12))
    adapter_a, adapter_b = IDAdapter(32, seed=4), IDAdapter(32, seed=4)
    assert torch.equal(before, torch.get_rng_state())
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name])
    assert not torch.equal(first.expander.weight, other.expander.weight)
    for name, value in adapter_a.state_dict().items():
        assert torch.equal(value, adapter_b.state_dict()[name])


# --- Regulariser ---------------------------------------------------------------------------------

def pinv_reference(initial, vectors, eps, weight, rtol=None):
    sigma = torch.cov(initial.T) + eps * torch.eye(initial.shape[1], dtype=initial.dtype)
    inverse = torch.linalg.pinv(sigma) if rtol is None else torch.linalg.pinv(sigma, rtol=rtol)
    offset = vectors - initial
    squared = torch.diagonal(offset @ inverse @ offset.T)
    return weight * squared.clamp(min=1e-8).sqrt().mean()


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("offset", ["random", "mostly along the span"])
def test_regulariser_equals_the_explicit_pinv_formula(count, offset):
    initial = randn(count, 64, seed=13)
    if offset == "random":  # dominated by the off-span 1/eps term
        vectors = initial + 0.01 * randn(count, 64, seed=14)
    else:  # both terms matter: a move toward the other initial vectors plus a little noise
        vectors = initial + 0.5 * (initial.roll(1, dims=0) - initial) + 1e-4 * randn(count, 64, seed=14)
    regulariser = MahalanobisRegulariser(initial, eps=2e-5, weight=8e-4)
    expected = pinv_reference(initial, vectors, 2e-5, 8e-4)
    assert torch.allclose(regulariser(vectors), expected, rtol=1e-8, atol=0)
    assert torch.allclose(regulariser(vectors.float()).double(), expected, rtol=1e-5, atol=0)


def test_regulariser_without_off_span_term_matches_a_truncated_pinv():
    initial = randn(3, 64, seed=15)
    vectors = initial + 0.05 * randn(3, 64, seed=16)
    regulariser = MahalanobisRegulariser(initial, penalise_off_span=False)
    expected = pinv_reference(initial, vectors, 2e-5, 8e-4, rtol=1e-4)  # drops the eps-only directions
    assert torch.allclose(regulariser(vectors), expected, rtol=1e-8, atol=0)
    assert regulariser(vectors) < MahalanobisRegulariser(initial)(vectors)


def test_regulariser_at_its_start_point_is_the_floor_with_no_pull():
    initial = randn(2, 32, seed=17)
    vectors = initial.clone().requires_grad_(True)
    loss = MahalanobisRegulariser(initial, weight=8e-4)(vectors)
    loss.backward()
    assert torch.allclose(loss, torch.tensor(8e-4 * 1e-4, dtype=torch.float64))
    assert torch.count_nonzero(vectors.grad) == 0


def test_regulariser_with_one_token_uses_eps_identity():
    initial = randn(1, 16, seed=18)
    vectors = initial + randn(1, 16, seed=19)
    expected = 8e-4 * (vectors - initial).norm() / math.sqrt(2e-5)
    assert torch.allclose(MahalanobisRegulariser(initial)(vectors), expected, rtol=1e-10)


# --- Anchor columns and the name list -----------------------------------------------------------

def test_column_means_by_hand():
    table = torch.tensor([[float(row), float(10 * row), -1.0] for row in range(8)])
    names = [[1, 2, 3], [4], [5, 6], [7, 0, 2]]
    means = column_means(names, table, num_tokens=2)
    # column 0 averages rows 1, 4, 5, 7; column 1 only the names that have a second token: 2, 6, 0
    expected = torch.tensor([[17 / 4, 170 / 4, -1.0], [8 / 3, 80 / 3, -1.0]])
    assert torch.allclose(means, expected)


def test_column_means_refuses_empty_columns_and_bad_ids():
    table = torch.zeros(5, 3)
    with pytest.raises(ValueError, match="no name has a token at position"):
        column_means([[1], [2]], table, num_tokens=2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        column_means([[1], [9]], table, num_tokens=1)


RELEASED_NAMES_SHA256 = "e37ec819e5225b627ef24ae3357314ca775e5eab00844392a6234903a8f4e303"


def test_default_name_list_is_the_released_one_with_its_repeats():
    """The anchor averages the authors' 691 lines (Whslee/ID-EA examples/wiki_names_v2.txt),
    unchanged: a repeated name weighs twice there, so it must here."""
    assert NAME_LIST_PATH.name == "wiki_names_v2.txt"
    assert hashlib.sha256(NAME_LIST_PATH.read_bytes()).hexdigest() == RELEASED_NAMES_SHA256
    names = load_name_list()
    assert len(names) == 691 and len(set(names)) == 646
    assert names[:2] == ["Adam Sandler", "Adam Savage"]


REPO = pathlib.Path(__file__).resolve().parents[1]


def documented_count_of(list_path: pathlib.Path) -> int:
    """The number of names the node reference (docs/nodes.md, ID-Enhancer) gives for the list it names
    by this path (the number before "names"/"people" in the 200 characters before the path)."""
    reference = (REPO / "docs" / "nodes.md").read_text(encoding="utf-8")
    relative = list_path.resolve().relative_to(REPO).as_posix()
    for mention in re.finditer(re.escape(relative), reference):
        window = reference[max(0, mention.start() - 200):mention.start()]
        counts = re.findall(r"(\d[\d,]*)\s+(?:[\w'-]+\s+){0,3}?(?:names|people)\b", window)
        if counts:
            return int(counts[-1].replace(",", ""))
    raise AssertionError(f"docs/nodes.md does not say how many names the default list {relative} holds")


def test_the_default_name_list_holds_as_many_names_as_the_node_reference_says():
    names = load_name_list()
    assert len(names) == documented_count_of(NAME_LIST_PATH)


def test_name_list_reader_skips_comments_and_blanks(tmp_path):
    listing = tmp_path / "names.txt"
    listing.write_text("# header\nAda Lovelace\n\n  Alan Turing  # computing\n#Nobody\n", encoding="utf-8")
    assert load_name_list(listing) == ["Ada Lovelace", "Alan Turing"]

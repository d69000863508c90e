"""Identity files (.safetensors only) and prompt-embedding files.

Identity files are shared between people, so loading must never execute anything (no pickle) and must
say plainly what is wrong with a bad file. A SHA-256 over the tensors and metadata catches corruption
that would still parse (a flipped digit in a name or a number). Writes go to a temporary file in the
same folder and are moved into place, so a crash never leaves a half-written identity behind.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import tempfile

import torch
import safetensors.torch
from safetensors import safe_open

from .adapter import IDAdapter
from .enhancer import IDEnhancer
from .errors import InputError
from .identity import ARCH_ENCODER_KEYS, ARCH_LABELS, IdentityEmbedding
from .version import PACK_VERSION

logger = logging.getLogger(__name__)

FORMAT_MARKER = "ID-EA identity"
FORMAT_VERSION = "1"
SUPPORTED_FORMAT_VERSIONS = ("1",)
PROMPT_EMBEDDING_KEYS = ("clip_l", "clip_h", "clip_g", "t5xxl")
ACCEPTED = "only ID-EA .safetensors identity files are accepted"
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Bytes per element of every dtype safetensors writes (an identity's tensors must also be floating).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_SEED = 2 ** 63 - 2  # the adapter is seeded with seed + 1; torch takes seeds below 2**64


class IdentityFileError(InputError):
    """A file that is not a valid ID-EA identity, or one made for a different base model."""


def save_identity(identity: IdentityEmbedding, path: str | os.PathLike, overwrite: bool = False) -> str:
    """Write `identity` to `path` (.safetensors) and return its checksum. Refuses to replace an existing
    file unless overwrite=True, and refuses identities holding inf/nan (a diverged run is not worth
    keeping)."""
    tensors = _identity_tensors(identity)
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"not saving: {name} contains inf or nan (training diverged; "
                             f"try a lower learning rate)")
    metadata = _identity_metadata(identity)
    metadata["idea.checksum"] = _checksum(tensors, metadata)
    write_atomically(serialize(tensors, metadata), path, overwrite)
    logger.info("saved ID-EA identity (%s, %d tokens) to %s", identity.arch, identity.num_tokens, path)
    return metadata["idea.checksum"]


def save_embedding_for_prompts(token_vectors: dict[str, torch.Tensor], path: str | os.PathLike,
                               overwrite: bool = False) -> None:
    """Write the token vectors in the host's embedding format (keys clip_l / clip_h / clip_g / t5xxl,
    each [K, D_tok]) so `embedding:NAME` works in any prompt, with or without this pack: each of the
    host's tokenizers reads its own key from the one file."""
    if not token_vectors or not set(token_vectors) <= set(PROMPT_EMBEDDING_KEYS):
        raise ValueError(f"prompt embeddings need keys among {PROMPT_EMBEDDING_KEYS}, got {sorted(token_vectors)}")
    counts = {key: value.shape[0] for key, value in token_vectors.items() if value.dim() == 2}
    if len(counts) != len(token_vectors) or len(set(counts.values())) != 1:
        raise ValueError("every encoder's vectors must be [K, D] with the same K, got "
                         f"{ {key: list(value.shape) for key, value in token_vectors.items()} }")
    tensors = {key: value.detach().to("cpu", torch.float32).contiguous().clone()
               for key, value in token_vectors.items()}
    if not all(torch.isfinite(value).all() for value in tensors.values()):
        raise ValueError("not saving: the token vectors contain inf or nan")
    metadata = {"idea.kind": "ID-EA prompt embedding", "idea.pack_version": PACK_VERSION}
    write_atomically(serialize(tensors, metadata), path, overwrite)
    logger.info("saved prompt embedding (%s) to %s", ", ".join(sorted(tensors)), path)


def load_identity(path: str | os.PathLike, expected_arch: str | None = None,
                  expected_ctx_dim: int | None = None) -> IdentityEmbedding:
    """Read and validate an identity file; optionally check it fits the connected base model."""
    path = os.fspath(path)
    check_container(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors reports what the header check cannot see its own way
        raise IdentityFileError(f"{path} is a damaged safetensors file ({error}); {ACCEPTED}") from error
    _check_metadata(path, metadata)
    if metadata.get("idea.checksum") != _checksum(tensors, metadata):
        raise IdentityFileError(f"{path} is corrupted: its contents do not match the checksum written "
                                f"when it was saved; {ACCEPTED}")
    identity = _build_identity(path, metadata, tensors)
    _check_expected(identity, expected_arch, expected_ctx_dim)
    return identity


def _identity_tensors(identity: IdentityEmbedding) -> dict[str, torch.Tensor]:
    """Flat tensor dict; names never collide with the host's prompt-embedding keys."""
    tensors = {}
    for key in identity.encoder_keys:
        tensors[f"token_vectors.{key}"] = identity.token_vectors[key]
        tensors[f"initial_vectors.{key}"] = identity.initial_vectors[key]
    tensors["anchor"] = identity.anchor
    tensors["face_mean"] = identity.face_mean
    with torch.no_grad():
        tensors["fused_tokens"] = identity.fused_tokens()
    tensors.update({f"adapter.{name}": value for name, value in identity.adapter.state_dict().items()})
    tensors.update({f"enhancer.{name}": value for name, value in identity.enhancer.state_dict().items()})
    return {name: value.detach().to("cpu").contiguous().clone() for name, value in tensors.items()}


def _identity_metadata(identity: IdentityEmbedding) -> dict[str, str]:
    try:
        training = json.dumps(identity.metadata, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"identity metadata must be JSON-serialisable: {error}") from error
    return {
        "idea.format": FORMAT_MARKER, "idea.format_version": FORMAT_VERSION, "idea.arch": identity.arch,
        "idea.ctx_dim": str(identity.ctx_dim), "idea.num_tokens": str(identity.num_tokens),
        "idea.encoders": ",".join(identity.encoder_keys), "idea.face_model_name": identity.face_model_name,
        "idea.face_dim": str(identity.face_dim), "idea.train_enhancer": json.dumps(identity.train_enhancer),
        "idea.seed": str(identity.seed), "idea.enhancer_heads": str(identity.enhancer.heads),
        "idea.adapter_heads": str(identity.adapter.heads), "idea.adapter_beta": repr(identity.adapter.beta),
        "idea.training": training, "idea.pack_version": PACK_VERSION,
        **({"idea.clip_layers": json.dumps(identity.clip_layers, sort_keys=True)}
           if identity.clip_layers is not None else {}),
    }


def _checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    for key in sorted(metadata):
        if key != "idea.checksum":
            digest.update(f"{key}={metadata[key]}\n".encode())
    return digest.hexdigest()


def serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the header's keys in sorted order. The library writes its metadata in
    hash-map order, which differs from run to run, so the same identity would give different files;
    sorted, the same contents always give the same bytes (data offsets are relative to the end of
    the header, so only the header is rewritten)."""
    payload = safetensors.torch.save(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.dumps(json.loads(payload[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # keep the data 8-byte aligned, as the library does
    return struct.pack("<Q", len(header)) + header + payload[8 + length:]


def write_atomically(payload: bytes, path: str | os.PathLike, overwrite: bool) -> None:
    """Temp file in the target folder, fsync, then link (no-clobber) or replace into place."""
    path = os.path.abspath(os.fspath(path))
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"{path}: the file name must end in .safetensors")
    refusal = (f"{path} already exists and was left unchanged; choose another name, "
               f"or set overwrite=True to replace it")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(refusal)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(payload)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_path, 0o644)
        if overwrite:
            os.replace(temp_path, path)
            return
        try:
            os.link(temp_path, path)  # fails if another writer got there first: never clobbers
        except FileExistsError:
            raise FileExistsError(refusal) from None
        except OSError:  # file systems without hard links
            if os.path.exists(path):
                raise FileExistsError(refusal) from None
            os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)


def check_container(path: str) -> None:
    """Recognise the common wrong files before handing bytes to the safetensors parser."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        start = file.read(9)
        if start[:4] == b"PK\x03\x04":
            raise IdentityFileError(f"{path} is a zip archive (how torch.save writes .pt/.ckpt checkpoints), "
                                    f"not safetensors; such files can run code when loaded; {ACCEPTED}")
        # A pickle starts with PROTO (0x80) then its protocol number; a safetensors header length may
        # also start with 0x80, so only call it a pickle when byte 8 is not the header's "{".
        if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and start[8:9] != b"{":
            raise IdentityFileError(f"{path} is a Python pickle (an old PyTorch checkpoint), not safetensors; "
                                    f"such files can run code when loaded; {ACCEPTED}")
        if size < 9:
            raise IdentityFileError(f"{path} is truncated or empty ({size} bytes); {ACCEPTED}")
        (header_size,) = struct.unpack("<Q", start[:8])
        if start[8:9] != b"{" or header_size > MAX_HEADER_BYTES:
            raise IdentityFileError(f"{path} is not a safetensors file (no safetensors header); {ACCEPTED}")
        if 8 + header_size > size:
            raise IdentityFileError(f"{path} is truncated: its header needs {8 + header_size} bytes but the "
                                    f"file has {size}; {ACCEPTED}")
        file.seek(8)
        header = file.read(header_size)
    _check_header(path, header, size - 8 - header_size)


def _check_header(path: str, raw: bytes, data_size: int) -> None:
    """Every tensor entry must have a known dtype and a shape that fits its byte range, and every
    range must lie inside the file: so nothing read later can ask for more memory than the file holds
    (a header claiming terabytes is refused here, before anything is allocated)."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise IdentityFileError(f"{path} is damaged: its safetensors header cannot be read "
                                f"({type(error).__name__}); {ACCEPTED}") from None
    if not isinstance(header, dict):
        raise IdentityFileError(f"{path} is damaged: its safetensors header is not a table; {ACCEPTED}")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise IdentityFileError(f"{path} is damaged: its safetensors metadata is not text; {ACCEPTED}")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        problem = _entry_problem(entry, data_size)
        if problem:
            raise IdentityFileError(f"{path} is damaged: tensor {name!r} {problem}; {ACCEPTED}")


def _entry_problem(entry, data_size: int) -> str | None:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return "has a malformed header entry"
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_BYTES:
        return f"has the unknown dtype {dtype!r}"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return "has a malformed shape"
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size):
        return f"lies outside the file's {data_size} bytes of data (truncated or damaged)"
    count = math.prod(shape)
    if count * DTYPE_BYTES[dtype] != offsets[1] - offsets[0]:
        return (f"claims shape {shape} ({count * DTYPE_BYTES[dtype]} bytes) in {offsets[1] - offsets[0]} "
                "bytes of data")
    return None


def _check_metadata(path: str, metadata: dict[str, str]) -> None:
    if metadata.get("idea.format") != FORMAT_MARKER:
        raise IdentityFileError(f"{path} is a safetensors file without ID-EA identity metadata (a prompt "
                                f"embedding belongs in models/embeddings and is used as embedding:NAME); "
                                f"{ACCEPTED}")
    version = metadata.get("idea.format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise IdentityFileError(f"{path} uses identity format version {version!r}, which this pack "
                                f"({PACK_VERSION}) cannot read (it reads {', '.join(SUPPORTED_FORMAT_VERSIONS)}); "
                                f"update ComfyUI-ID-EA")
    arch = metadata.get("idea.arch")
    if arch not in ARCH_ENCODER_KEYS:
        raise IdentityFileError(f"{path} names an unknown base architecture {arch!r} "
                                f"(known: {', '.join(sorted(ARCH_ENCODER_KEYS))})")


def _meta_int(path: str, metadata: dict[str, str], key: str) -> int:
    try:
        return int(metadata[key])
    except (KeyError, ValueError):
        raise IdentityFileError(f"{path}: metadata field {key} is missing or not an integer") from None


def _take(path: str, tensors: dict[str, torch.Tensor], name: str, shape: list[int] | None) -> torch.Tensor:
    if name not in tensors:
        raise IdentityFileError(f"{path} is incomplete: tensor {name!r} is missing")
    tensor = tensors[name]
    if shape is not None and list(tensor.shape) != shape:
        raise IdentityFileError(f"{path}: tensor {name!r} has shape {list(tensor.shape)}, expected {shape}")
    if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
        raise IdentityFileError(f"{path}: tensor {name!r} is not a finite floating-point tensor")
    return tensor.clone()  # own, aligned storage: kernels on misaligned views round differently


def _check_module_state(path: str, module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    for name, value in module.state_dict().items():
        tensor = tensors.get(prefix + name)
        if tensor is None or list(tensor.shape) != list(value.shape):
            raise IdentityFileError(f"{path}: tensor {prefix + name!r} is missing or has the wrong shape "
                                    f"(expected {list(value.shape)})")


def _load_module_state(path: str, module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    expected = module.state_dict()
    state = {name: _take(path, tensors, prefix + name, list(value.shape)) for name, value in expected.items()}
    module.load_state_dict(state)
    module.eval()


def _build_identity(path: str, metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> IdentityEmbedding:
    arch = metadata["idea.arch"]
    keys = ARCH_ENCODER_KEYS[arch]
    ctx_dim, num_tokens = _meta_int(path, metadata, "idea.ctx_dim"), _meta_int(path, metadata, "idea.num_tokens")
    face_dim, seed = _meta_int(path, metadata, "idea.face_dim"), _meta_int(path, metadata, "idea.seed")
    try:
        training = json.loads(metadata["idea.training"])
        train_enhancer = json.loads(metadata["idea.train_enhancer"])
        beta = float(metadata["idea.adapter_beta"])
        face_model_name = metadata["idea.face_model_name"]
        clip_layers = json.loads(metadata["idea.clip_layers"]) if "idea.clip_layers" in metadata else None
    except (KeyError, ValueError, RecursionError) as error:
        raise IdentityFileError(f"{path}: identity metadata is missing or unreadable "
                                f"({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(training, dict) or not isinstance(train_enhancer, bool) or not math.isfinite(beta):
        raise IdentityFileError(f"{path}: identity metadata has values of the wrong kind")
    if not 0 <= seed <= MAX_SEED or min(ctx_dim, num_tokens, face_dim) < 1:
        raise IdentityFileError(f"{path}: identity metadata has sizes or a seed out of range")
    token_vectors = {key: _take(path, tensors, f"token_vectors.{key}", None) for key in keys}
    initial = {key: _take(path, tensors, f"initial_vectors.{key}", list(token_vectors[key].shape)) for key in keys}
    anchor = _take(path, tensors, "anchor", [num_tokens, ctx_dim])
    face_mean = _take(path, tensors, "face_mean", [face_dim])
    saved_fused = _take(path, tensors, "fused_tokens", [num_tokens, ctx_dim])
    enhancer_heads = _meta_int(path, metadata, "idea.enhancer_heads")
    adapter_heads = _meta_int(path, metadata, "idea.adapter_heads")
    try:
        with torch.device("meta"):  # shapes only: check the file holds them before allocating the modules
            _check_module_state(path, IDEnhancer(face_dim, ctx_dim, num_tokens, heads=enhancer_heads), "enhancer.",
                                tensors)
            _check_module_state(path, IDAdapter(ctx_dim, heads=adapter_heads, beta=beta), "adapter.", tensors)
        enhancer = IDEnhancer(face_dim, ctx_dim, num_tokens, heads=enhancer_heads, seed=seed)
        adapter = IDAdapter(ctx_dim, heads=adapter_heads, beta=beta, seed=seed + 1)
        _load_module_state(path, enhancer, "enhancer.", tensors)
        _load_module_state(path, adapter, "adapter.", tensors)
        identity = IdentityEmbedding(arch=arch, token_vectors=token_vectors, initial_vectors=initial, anchor=anchor,
                                     enhancer=enhancer, adapter=adapter, face_mean=face_mean,
                                     face_model_name=face_model_name, train_enhancer=bool(train_enhancer),
                                     seed=seed, metadata=training, clip_layers=_clip_layers(path, clip_layers))
    except ValueError as error:
        raise IdentityFileError(f"{path}: the identity's parts do not fit together ({error})") from None
    with torch.no_grad():
        if not torch.allclose(identity.fused_tokens(), saved_fused, rtol=1e-4, atol=1e-5):
            logger.warning("%s: fused tokens recomputed from the enhancer differ from the saved ones", path)
    return identity


def _clip_layers(path: str, value) -> dict[str, str] | None:
    if value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
        return value
    raise IdentityFileError(f"{path}: metadata field idea.clip_layers is not a mapping of encoder to layer")


def read_checksum(path: str | os.PathLike) -> str | None:
    """The checksum an identity file was saved with (from its header only), or None if unreadable."""
    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
            return (handle.metadata() or {}).get("idea.checksum")
    except Exception:  # any unreadable file simply has no usable checksum
        return None


def _check_expected(identity: IdentityEmbedding, expected_arch: str | None, expected_ctx_dim: int | None) -> None:
    trained_on = f"{ARCH_LABELS[identity.arch]} (context size {identity.ctx_dim})"
    if expected_arch is not None and expected_arch != identity.arch:
        wanted = ARCH_LABELS.get(expected_arch, expected_arch)
        raise IdentityFileError(f"this identity was trained on {trained_on}, but the connected model is "
                                f"{wanted}; train an identity on this base model or load a {ARCH_LABELS[identity.arch]} "
                                f"checkpoint")
    if expected_ctx_dim is not None and expected_ctx_dim != identity.ctx_dim:
        raise IdentityFileError(f"this identity was trained on {trained_on}, but the connected model's "
                                f"cross-attention context size is {expected_ctx_dim}")

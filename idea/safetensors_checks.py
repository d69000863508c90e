"""Container checks on a .safetensors file before its bytes reach the safetensors parser.

Identity files are shared between people, so a wrong or damaged file must be refused with a plain
reason, never executed (pickles, zip checkpoints) and never allowed to make the loader allocate more
than the file holds (a header claiming terabytes). The optimiser-state files go through the same gate.
"""
from __future__ import annotations

import json
import math
import os
import struct

from .errors import InputError

ACCEPTED = "only ID-EA .safetensors identity files are accepted"
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Bytes per element of every dtype safetensors writes (an identity's tensors must also be floating).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class IdentityFileError(InputError):
    """A file that is not a valid ID-EA identity, or one made for a different base model."""


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

"""Host-free half of the textual ID anchor (docs/method.md, component 2).

The anchor starts from "what a famous person's name looks like" to the text encoder: column k is the
mean input embedding of the k-th token of many celebrity names. Tokenising and running the encoder on
[BOS, m_1..m_K, EOS, PAD...] belong to the node layer, which knows the host's text encoders.
"""
from __future__ import annotations

import logging
import pathlib

import torch

logger = logging.getLogger(__name__)

# The released recipe's list (idea/data/README.md says where it comes from). Repeated names are kept:
# the released code averages every line, so a repeat weighs twice.
NAME_LIST_PATH = pathlib.Path(__file__).resolve().parent / "data" / "wiki_names_v2.txt"


def load_name_list(path: str | pathlib.Path = NAME_LIST_PATH) -> list[str]:
    """Names in file order, one a line, repeats kept; text after '#' and blank lines are ignored."""
    names = []
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    if not names:
        raise ValueError(f"no names found in {path}")
    return names


def column_means(token_ids_per_name: list[list[int]], embedding_table: torch.Tensor,
                 num_tokens: int) -> torch.Tensor:
    """[K, D] where row k averages embedding_table[ids[k]] over the names that have a k-th token.

    Names shorter than K tokens add nothing to the later rows, so a short name does not pull them
    toward zero. Accumulates in float32 (float64 if the table is float64) and returns that dtype.
    """
    if embedding_table.dim() != 2:
        raise ValueError(f"embedding table must be [vocab, D], got {list(embedding_table.shape)}")
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be at least 1, got {num_tokens}")
    vocab, dim = embedding_table.shape
    dtype = torch.float64 if embedding_table.dtype == torch.float64 else torch.float32
    sums = torch.zeros(num_tokens, dim, dtype=dtype, device=embedding_table.device)
    counts = [0] * num_tokens
    for name_index, ids in enumerate(token_ids_per_name):
        for column, token_id in enumerate(ids[:num_tokens]):
            if not 0 <= int(token_id) < vocab:
                raise ValueError(f"name #{name_index} has token id {token_id} outside the vocabulary "
                                 f"(size {vocab})")
            sums[column] += embedding_table[int(token_id)].to(dtype)
            counts[column] += 1
    empty = [column for column, count in enumerate(counts) if count == 0]
    if empty:
        raise ValueError(f"no name has a token at position(s) {empty}; use fewer tokens "
                         f"(num_tokens={num_tokens}) or a name list with longer names")
    logger.debug("anchor columns averaged over %s names", counts)
    return sums / torch.tensor(counts, dtype=dtype, device=sums.device).unsqueeze(1)

"""The byte-level language model and its corpus, shared by the LM comparison and the benchmarks.

Real text that every machine has: the ``.py`` files of the running interpreter's standard
library (``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded), split into
training and held-out files with a fixed seed (10% of the files held out), each side read up
to a size cap. :class:`ByteLM` is a small pre-norm causal transformer over bytes
(vocabulary 256); :func:`windows` draws training windows and their next-byte targets.
"""

import hashlib
import platform
import sysconfig
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["ByteLM", "read_corpus", "windows", "SPLIT_SEED", "VALIDATION_SEED"]

SPLIT_SEED = 0  # which files are held out
VALIDATION_SEED = 12345  # which held-out windows the validation loss is measured on


class ByteLM(nn.Module):
    """Embedding (256 → d) + learned positions, pre-norm transformer layers with a causal
    mask, final norm, linear head (d → 256).

    Parameters
    ----------
    width : int
        d, the model width (a multiple of ``heads``).
    layers : int
        Transformer layers (each: attention, then a 4d MLP).
    heads : int
        Attention heads.
    context : int
        Longest input, in bytes.

    Notes
    -----
    Input: (batch, T ≤ context) bytes as int64; output: logits (batch, T, 256).
    """

    def __init__(self, width=64, layers=2, heads=4, context=64):
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Embedding(context, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 256, bias=False)
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False
        )

    def forward(self, x):
        t = x.shape[1]
        h = self.embed(x) + self.position(torch.arange(t, device=x.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


def read_corpus(cap_bytes):
    """The standard library's sources, split by file.

    Parameters
    ----------
    cap_bytes : int
        Training bytes to read (the held-out side reads ``max(cap_bytes // 8, 4096)``).

    Returns
    -------
    train, validation : torch.Tensor of int64
        The bytes of each side, files joined by newlines.
    info : dict
        The standard library's path, Python's version, the file count, and per side the
        files used, bytes and SHA-256 (so a run names exactly the text it saw).

    Raises
    ------
    RuntimeError
        Fewer than 20 ``.py`` files were found.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    if len(files) < 20:
        raise RuntimeError(f"found only {len(files)} .py files under {root}; need the standard library's")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    held_out = max(1, len(files) // 10)
    parts = {"validation": order[:held_out], "train": order[held_out:]}
    caps = {"train": cap_bytes, "validation": max(cap_bytes // 8, 4096)}
    data, info = {}, {"stdlib": str(root), "python": platform.python_version(), "files": len(files)}
    for name, indices in parts.items():
        chunks, size, used = [], 0, 0
        for i in indices:
            if size >= caps[name]:
                break
            text = files[i].read_bytes()[: caps[name] - size]
            chunks.append(text)
            size, used = size + len(text), used + 1
        blob = b"\n".join(chunks)
        data[name] = torch.frombuffer(bytearray(blob), dtype=torch.uint8).long()
        info[name] = {"files": used, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    return data["train"], data["validation"], info


def windows(data, count, context, generator):
    """``count`` random windows of ``context`` + 1 bytes of ``data``.

    Parameters
    ----------
    data : torch.Tensor of int64, shape (L,)
    count, context : int
    generator : torch.Generator
        Draws the window starts (seeded by the caller: reproducible).

    Returns
    -------
    inputs, targets : torch.Tensor, shape (count, context)
        The bytes and the next byte of each position.
    """
    starts = torch.randint(0, len(data) - context - 1, (count,), generator=generator)
    rows = torch.stack([data[s : s + context + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]

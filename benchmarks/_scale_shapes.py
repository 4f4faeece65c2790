"""Layer shapes of the models the scale model extrapolates to (weights as the hook sees them).

Each model is a list of weight matrices (m, n) — ``nn.Linear``'s (out, in), an embedding's
(vocabulary, width), GPT-2's ``Conv1D`` (in, out) — and the count of other parameters
(biases, norms), which every method all-reduces uncompressed. Sources: GPT-2 small
(Radford et al. 2019; Hugging Face ``gpt2`` config: 12 layers, width 768, vocabulary 50 257,
context 1024, tied head); a 1.1B LLaMA-shaped model (TinyLlama-1.1B's config: 22 layers,
width 2048, 4 key-value heads of 64, MLP 5632, vocabulary 32 000, untied head); LLaMA-7B
(Touvron et al. 2023: 32 layers, width 4096, MLP 11 008, vocabulary 32 000, untied head).
"""

__all__ = ["MODELS", "bytelm_shapes", "parameters"]


def _gpt2_small():
    d, layers, vocab, context = 768, 12, 50257, 1024
    per_layer = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)]  # Conv1D weights are (in, out)
    matrices = [(vocab, d), (context, d)] + per_layer * layers
    other = layers * (3 * d + d + 4 * d + d + 4 * d) + 2 * d  # biases, 2 LayerNorms per layer, final norm
    return matrices, other


def _llama(d, layers, hidden, vocab, kv):
    per_layer = [(d, d), (kv, d), (kv, d), (d, d), (hidden, d), (hidden, d), (d, hidden)]
    matrices = [(vocab, d)] + per_layer * layers + [(vocab, d)]  # embedding, layers, untied head
    other = layers * 2 * d + d  # RMSNorm weights
    return matrices, other


MODELS = {
    "GPT-2 124M": _gpt2_small(),
    "LLaMA-shaped 1.1B": _llama(2048, 22, 5632, 32000, 256),
    "LLaMA 7B": _llama(4096, 32, 11008, 32000, 4096),
}


def parameters(model):
    """Total parameter count of ``(matrices, other)``."""
    matrices, other = model
    return sum(m * n for m, n in matrices) + other


def bytelm_shapes():
    """The benchmarked byte-level LM as (matrices, other), read from the module itself."""
    from simsgd.examples.bytelm import ByteLM

    matrices, other = [], 0
    for p in ByteLM(64, 2, 4, 64).parameters():
        if p.dim() >= 2:
            matrices.append((p.shape[0], p.numel() // p.shape[0]))
        else:
            other += p.numel()
    return matrices, other

"""An independent numpy BERT forward pass over Hugging Face ``BertModel`` weights.

Written from the BERT paper / HF ``modeling_bert`` semantics, sharing no code with the
converter, so that comparing it with a converted SavedModel checks the weight mapping
(transposes, head splits, layer-norm placement) rather than repeating it. float64 throughout.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_exact(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # scipy is normally there (tf-models-official needs it)
        erf = _erf
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def linear(x: np.ndarray, weights: Dict[str, np.ndarray], name: str) -> np.ndarray:
    # torch.nn.Linear: y = x W^T + b with W stored [out, in].
    return x @ weights[name + ".weight"].T + weights[name + ".bias"]


DROPOUT_SITES_PER_LAYER = ("attention_probs", "attention_output", "output")


def bert_forward(weights: Dict[str, np.ndarray], config: dict, input_ids: np.ndarray,
                 attention_mask: np.ndarray, token_type_ids: np.ndarray,
                 keep: Optional[Dict[str, np.ndarray]] = None, rate: float = 0.0,
                 attention_rate: Optional[float] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """(sequence_output [B, T, H], pooled_output [B, H]) of ``BertModel``.

    In eval mode without ``keep``. With ``keep`` (0/1 arrays by site: ``"embeddings"`` [B, T, H],
    and per layer i ``"layer_i.attention_probs"`` [B, heads, T, T], ``"layer_i.attention_output"``
    and ``"layer_i.output"`` [B, T, H]), in train mode with those dropout masks, where
    ``modeling_bert`` applies its ``nn.Dropout``s: after the embeddings' LayerNorm, on the
    attention probabilities, on each sublayer's dense output before the residual add and
    LayerNorm. Kept values are scaled by 1 / (1 - rate), as ``nn.Dropout`` does: ``rate``
    (``hidden_dropout_prob``) at every site but the attention probabilities, which use
    ``attention_rate`` (``attention_probs_dropout_prob``; default ``rate``).
    """
    def dropout(x, site):
        p = attention_rate if site.endswith("attention_probs") and attention_rate is not None else rate
        return x if keep is None else x * keep[site] / (1.0 - p)

    w = {k[len("bert."):] if k.startswith("bert.") else k: np.asarray(v, np.float64)
         for k, v in weights.items()}
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    act = {"gelu": gelu_exact, "gelu_new": gelu_tanh}[config.get("hidden_act", "gelu")]
    batch, seq_len = input_ids.shape
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    head_dim = hidden // heads

    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(seq_len)][None]
         + w["embeddings.token_type_embeddings.weight"][token_type_ids])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    x = dropout(x, "embeddings")

    # Additive mask over keys: padded keys get a large negative score before the softmax.
    additive = (1.0 - attention_mask.astype(np.float64))[:, None, None, :] * -1e9

    def split(t):  # [B, T, H] -> [B, heads, T, head_dim]
        return t.reshape(batch, seq_len, heads, head_dim).transpose(0, 2, 1, 3)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q = split(linear(x, w, p + "attention.self.query"))
        k = split(linear(x, w, p + "attention.self.key"))
        v = split(linear(x, w, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + additive
        scores -= scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        probs = dropout(probs, f"layer_{i}.attention_probs")
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq_len, hidden)
        attn = dropout(linear(context, w, p + "attention.output.dense"), f"layer_{i}.attention_output")
        x = layer_norm(attn + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
        inner = act(linear(x, w, p + "intermediate.dense"))
        out = dropout(linear(inner, w, p + "output.dense"), f"layer_{i}.output")
        x = layer_norm(out + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)

    pooled = np.tanh(linear(x[:, 0], w, "pooler.dense"))
    return x, pooled

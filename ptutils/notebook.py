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


#: Warnings of the book's dependencies that are known, understood and say nothing to a
#: reader, as ``(message, category)``: the message is a regular expression matched at the
#: start of the warning's text, as :func:`warnings.filterwarnings` matches it. Only these are
#: hidden; any other warning shows, so one that arrives with an upgrade is seen (and fails
#: ``make book``, where stderr in an executed chapter is a build warning).
KNOWN_NOISE: tuple[tuple[str, type[Warning]], ...] = (
    # tqdm.auto without ipywidgets falls back to text progress bars: what the book wants anyway
    (r"IProgress not found\. Please update jupyter and ipywidgets", Warning),
)


def setup_notebook(seed: int = 0, *, quiet: bool = True) -> dict:
    """Seed everything, go offline unless told otherwise, set the figure style, report.

    Prints one line with the mode (fast/full), the network switch, versions and the
    device, so every executed chapter records what it ran on.

    Args:
        seed: passed to :func:`ptutils.set_seed`.
        quiet: silence progress bars, library log messages below ERROR and the known,
            harmless warnings of :data:`KNOWN_NOISE` (by message; every other warning shows).

    Returns:
        A dict with the same information, for tests.
    """
    offline_env()
    if quiet:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        for message, category in KNOWN_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
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

"""ptutils: the tested code behind *Pre-trained Models, Executable*.

One module per concept; the public names are re-exported here.
"""

from . import baselines, cache, classroom, protocol
from .attention import (MultiHeadAttention, attention, causal_mask, padding_mask,
                        scaled_dot_product_attention)
from .classroom.checks import check
from .cnn import DigitCNN
from .config import FAST, ONLINE, is_fast, is_online, mode, pick
from .data import load_digits_images, load_polarity
from .display import show_source
from .feedforward import PositionwiseFeedForward
from .notebook import device, setup_notebook
from .pretrained import (load_text_model, mean_pool, minilm_path, model_source,
                         sentence_embeddings)
from .repro import set_seed
from .transformer import (EncoderBlock, EncoderConfig, TransformerEncoder,
                          load_state_dict_strict, sinusoidal_positions)

__version__ = "0.1.0"

__all__ = [
    "FAST", "ONLINE", "DigitCNN", "check", "classroom", "EncoderBlock", "EncoderConfig", "MultiHeadAttention",
    "PositionwiseFeedForward", "TransformerEncoder", "attention", "causal_mask", "device",
    "is_fast", "is_online", "load_digits_images", "load_polarity", "load_state_dict_strict",
    "load_text_model", "mean_pool", "minilm_path", "mode", "model_source", "padding_mask",
    "pick", "scaled_dot_product_attention", "set_seed", "setup_notebook", "show_source",
    "sinusoidal_positions", "sentence_embeddings",
]

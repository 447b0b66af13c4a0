"""ptutils: the tested code behind *Pre-trained Models, Executable*.

One module per concept; ``import ptutils`` imports every one of them, so
``ptutils.attention.MultiHeadAttention`` or ``ptutils.word2vec.train_word2vec`` works
without a further import. The most used names are also re-exported here; none of
them has the name of a module.

Concepts: :mod:`~ptutils.attention`, :mod:`~ptutils.feedforward`,
:mod:`~ptutils.transformer`, :mod:`~ptutils.pooling`, :mod:`~ptutils.word2vec`,
:mod:`~ptutils.textclf`, :mod:`~ptutils.seq_autoencoder`, :mod:`~ptutils.cnn`,
:mod:`~ptutils.autoencoder`, :mod:`~ptutils.contrastive`, :mod:`~ptutils.mlm`, :mod:`~ptutils.lm`,
:mod:`~ptutils.pretrained`, :mod:`~ptutils.finetune`, :mod:`~ptutils.compression`,
:mod:`~ptutils.checkpoint`. Training and evaluation: :mod:`~ptutils.training` (the one
loop), :mod:`~ptutils.distributed` (the same loop on several processes), :mod:`~ptutils.train` (the command),
:mod:`~ptutils.federated` (FedAvg),
:mod:`~ptutils.metrics`, :mod:`~ptutils.baselines`, :mod:`~ptutils.protocol`.
Data and artefacts: :mod:`~ptutils.data`, :mod:`~ptutils.cache`. Configuration:
:mod:`~ptutils.config` (switches, device), :mod:`~ptutils.repro` (seeding),
:mod:`~ptutils.progress` (bars and final lines). Notebooks
and classroom: :mod:`~ptutils.notebook`, :mod:`~ptutils.display`,
:mod:`~ptutils.plotting`, :mod:`ptutils.classroom`.
"""

from . import (attention, autoencoder, baselines, cache, checkpoint, classroom, cnn, compression, config,
               contrastive, data, display, distributed, federated, feedforward, finetune, gan, lm, metrics, mlm, notebook,
               plotting, pooling, pretrained, progress, protocol, repro, seq_autoencoder, textclf, train, training, transformer,
               word2vec)
from .attention import (MultiHeadAttention, attend, causal_mask, padding_mask,
                        scaled_dot_product_attention)
from .checkpoint import copy_weights, load_report, load_state_dict_strict
from .classroom.checks import check
from .cnn import DigitCNN
from .config import FAST, ONLINE, device, is_fast, is_online, mode, pick
from .data import load_digits_images, load_polarity, load_rt_polarity, rt_polarity_benchmark
from .display import show_source
from .feedforward import PositionwiseFeedForward
from .notebook import setup_notebook
from .pooling import mean_pool
from .pretrained import load_text_model, minilm_path, model_source, sentence_embeddings
from .repro import set_seed
from .training import fit, train_classifier
from .transformer import EncoderBlock, EncoderConfig, TransformerEncoder, sinusoidal_positions

__version__ = "0.1.0"

__all__ = [
    "FAST", "ONLINE", "DigitCNN", "EncoderBlock", "EncoderConfig", "MultiHeadAttention",
    "PositionwiseFeedForward", "TransformerEncoder", "attend", "causal_mask", "check", "copy_weights",
    "device", "fit", "is_fast", "is_online", "load_digits_images", "load_polarity", "load_report",
    "load_rt_polarity", "load_state_dict_strict", "load_text_model", "mean_pool", "minilm_path", "mode",
    "model_source", "padding_mask", "pick", "rt_polarity_benchmark", "scaled_dot_product_attention",
    "sentence_embeddings", "set_seed", "setup_notebook", "show_source", "sinusoidal_positions",
    "train_classifier",
]

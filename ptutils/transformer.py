"""A Transformer encoder built from :mod:`ptutils.attention` and :mod:`ptutils.feedforward`.

The layout follows BERT (and the original Transformer): token + position
(+ segment) embeddings, then ``num_layers`` identical blocks, each

    x = LayerNorm(x + Dropout(MultiHeadAttention(x)))
    x = LayerNorm(x + Dropout(FeedForward(x)))

("post-norm"). Because the layout and parameter shapes match BERT's,
:meth:`TransformerEncoder.from_hf` can copy the weights of a pre-trained Hugging
Face ``BertModel`` into it, and the reader's own encoder then computes the same
hidden states as ``transformers``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .attention import MultiHeadAttention, padding_mask
from .checkpoint import load_state_dict_strict
from .feedforward import PositionwiseFeedForward


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """The fixed sinusoidal position encodings of Vaswani et al. (2017).

    ``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))``,
    ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))``.

    Shapes:
        output: ``(max_len, d_model)``.
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even for sinusoidal positions, got {d_model}")
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)  # (d_model/2,)
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


@dataclass
class EncoderConfig:
    """Hyper-parameters of :class:`TransformerEncoder` (names follow the notation table)."""

    vocab_size: int = 1000
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 256
    num_layers: int = 2
    max_len: int = 128
    dropout: float = 0.1
    activation: str = "relu"
    positional: str = "learned"  # "learned", "sinusoidal" or "none" (no order information: an ablation)
    type_vocab_size: int = 0  # BERT's segment embeddings; 0 = none
    embedding_norm: bool = False  # BERT normalises the summed embeddings
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 0


def _check_ids(ids, name: str, size: int, size_name: str) -> None:
    """Raise unless ``ids`` is a ``(B, T)`` integer tensor with values in ``[0, size)`` (any ``B``, even 0)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError(f"{name} must be a (B, T) tensor, got {tuple(ids.shape) if isinstance(ids, torch.Tensor) else ids!r}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an integer tensor of ids, got {ids.dtype}")
    if ids.numel() and (int(ids.max()) >= size or int(ids.min()) < 0):
        raise ValueError(f"{name} must lie in [0, {size_name}={size}), got values in "
                         f"[{int(ids.min())}, {int(ids.max())}]")


class Embeddings(nn.Module):
    """Token + position (+ segment) embeddings, optionally layer-normalised.

    Shapes:
        input_ids, token_type_ids: ``(B, T)`` -> output ``(B, T, d_model)``.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.token = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_token_id)
        if cfg.positional == "learned":
            self.position = nn.Embedding(cfg.max_len, cfg.d_model)
        elif cfg.positional == "sinusoidal":
            self.register_buffer("pe", sinusoidal_positions(cfg.max_len, cfg.d_model), persistent=False)
        elif cfg.positional != "none":
            raise ValueError(f"positional must be 'learned', 'sinusoidal' or 'none', got {cfg.positional!r}")
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.embedding_norm else None
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, input_ids, token_type_ids=None):
        """Embed ``(B, T)`` token ids; an empty batch (``B = 0``) gives an empty ``(0, T, d_model)``."""
        _check_ids(input_ids, "input_ids", self.cfg.vocab_size, "vocab_size")
        T = input_ids.shape[1]
        if T == 0:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} has no positions: a sequence needs at least one token")
        if T > self.cfg.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        if token_type_ids is not None:
            if not isinstance(token_type_ids, torch.Tensor) or token_type_ids.shape != input_ids.shape:
                raise ValueError(f"token_type_ids {tuple(getattr(token_type_ids, 'shape', ()))} must match "
                                 f"input_ids {tuple(input_ids.shape)}")
            if self.token_type is None:
                if token_type_ids.any():
                    raise ValueError("token_type_ids given, but this encoder has no segment embeddings "
                                     "(type_vocab_size=0)")
            else:
                _check_ids(token_type_ids, "token_type_ids", self.cfg.type_vocab_size, "type_vocab_size")
        x = self.token(input_ids)  # (B, T, d_model)
        if self.cfg.positional == "learned":
            x = x + self.position(torch.arange(T, device=input_ids.device))  # (T, d_model) broadcast
        elif self.cfg.positional == "sinusoidal":
            x = x + self.pe[:T]
        if self.token_type is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)  # (B, T, d_model)


class EncoderBlock(nn.Module):
    """One post-norm encoder block: self-attention and feed-forward, each with a residual.

    Shapes:
        x: ``(B, T, d_model)``; mask: ``(T, T)`` or 4-D, broadcastable to ``(B, h, T, T)``;
        attention_mask: ``(B, T)`` padding mask, 1 at real tokens (see :class:`MultiHeadAttention`);
        output: ``(B, T, d_model)``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout=0.0, activation=activation)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None, need_weights: bool = False, *, attention_mask=None):
        """Return ``(output, weights)``; ``weights`` is None unless ``need_weights``."""
        a, weights = self.self_attn(x, mask=mask, need_weights=need_weights,
                                    attention_mask=attention_mask)  # (B, T, d_model)
        x = self.norm1(x + self.dropout(a))
        x = self.norm2(x + self.dropout(self.ffn(x)))  # (B, T, d_model)
        return x, weights


class EncoderOutput(NamedTuple):
    """What :meth:`TransformerEncoder.encode` returns (the fields of Hugging Face's ``BaseModelOutput``)."""

    last_hidden_state: torch.Tensor
    """The final hidden states ``(B, T, d_model)``: what ``encoder(...)`` returns."""
    hidden_states: tuple
    """``num_layers + 1`` tensors ``(B, T, d_model)``: the embeddings, then each block's output."""
    attentions: tuple | None
    """``num_layers`` tensors ``(B, h, T, T)`` of attention weights with ``need_weights``, else None."""


class TransformerEncoder(nn.Module):
    """Embeddings followed by a stack of :class:`EncoderBlock`.

    Calling the encoder returns the final hidden states, always a tensor;
    :meth:`encode` returns every layer's hidden states and, if asked, the attention
    weights, always as an :class:`EncoderOutput`.

    Args:
        cfg: an :class:`EncoderConfig` (or keyword arguments for one).

    Shapes:
        input_ids: ``(B, T)`` integer token ids; attention_mask: ``(B, T)``, 1 for
        real tokens and 0 for padding; output: ``(B, T, d_model)``. An empty batch
        (``B = 0``) gives an empty output.
    """

    def __init__(self, cfg: EncoderConfig | None = None, **kwargs):
        super().__init__()
        if cfg is None:
            cfg = EncoderConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either an EncoderConfig or keyword arguments, not both")
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.blocks = nn.ModuleList(
            EncoderBlock(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout, cfg.activation,
                         cfg.layer_norm_eps)
            for _ in range(cfg.num_layers)
        )

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """Encode a batch of token ids; return the final hidden states ``(B, T, d_model)``."""
        return self.encode(input_ids, attention_mask, token_type_ids).last_hidden_state

    def encode(self, input_ids, attention_mask=None, token_type_ids=None, *,
               need_weights: bool = False) -> EncoderOutput:
        """Encode a batch of token ids, keeping every layer's hidden states.

        Args:
            need_weights: also return each block's attention weights (this takes the
                teaching path of attention, which materialises them).

        Returns:
            An :class:`EncoderOutput` ``(last_hidden_state, hidden_states, attentions)``.
        """
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, d_model); checks the ids
        mask = None
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask {tuple(getattr(attention_mask, 'shape', ()))} must match "
                                 f"input_ids {tuple(input_ids.shape)}")
            mask = padding_mask(attention_mask)  # (B, 1, 1, T)
        hidden, attns = [x], []
        for block in self.blocks:
            x, w = block(x, mask, need_weights=need_weights)  # (B, T, d_model)
            hidden.append(x)
            attns.append(w)
        return EncoderOutput(x, tuple(hidden), tuple(attns) if need_weights else None)

    # ------------------------------------------------------------------ BERT import
    @classmethod
    def from_hf(cls, hf_model) -> "TransformerEncoder":
        """Build an encoder with the weights of a Hugging Face ``BertModel``.

        Every parameter of the Hugging Face model is copied except the pooler (a
        classification head this encoder does not have); the copy is checked in
        both directions, so a missing or unexpected weight raises ``ValueError``.
        """
        c = hf_model.config
        if getattr(c, "model_type", None) != "bert":
            raise ValueError(f"from_hf expects a BERT model, got model_type={getattr(c, 'model_type', None)!r}")
        if getattr(c, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        cfg = EncoderConfig(
            vocab_size=c.vocab_size, d_model=c.hidden_size, num_heads=c.num_attention_heads,
            d_ff=c.intermediate_size, num_layers=c.num_hidden_layers,
            max_len=c.max_position_embeddings, dropout=c.hidden_dropout_prob,
            activation=c.hidden_act, positional="learned", type_vocab_size=c.type_vocab_size,
            embedding_norm=True, layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id or 0,
        )
        model = cls(cfg)
        hf_params = dict(hf_model.named_parameters())
        prefix = "bert." if any(k.startswith("bert.") for k in hf_params) else ""
        state, used = {}, set()
        for hf_name, tensor in hf_params.items():
            name = hf_name[len(prefix):] if hf_name.startswith(prefix) else hf_name
            ours = _bert_name(name)
            if ours is None:
                continue
            state[ours] = tensor.detach().clone()
            used.add(hf_name)
        ignored = sorted(k for k in hf_params if k not in used)
        unexpected_ignored = [k for k in ignored if not k.startswith((prefix + "pooler.", "pooler.", "cls."))]
        if unexpected_ignored:
            raise ValueError(f"weights of the Hugging Face model with no place in this encoder: {unexpected_ignored}")
        load_state_dict_strict(model, state)
        return model.eval()


_BERT_RULES = [
    (r"embeddings\.word_embeddings\.(weight)", r"embeddings.token.\1"),
    (r"embeddings\.position_embeddings\.(weight)", r"embeddings.position.\1"),
    (r"embeddings\.token_type_embeddings\.(weight)", r"embeddings.token_type.\1"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)", r"blocks.\1.self_attn.w_q.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)", r"blocks.\1.self_attn.w_k.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)", r"blocks.\1.self_attn.w_v.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"blocks.\1.self_attn.w_o.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"blocks.\1.ffn.w_1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"blocks.\1.ffn.w_2.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"blocks.\1.norm2.\2"),
]


def _bert_name(name: str) -> str | None:
    """Map a Hugging Face BERT parameter name to this encoder's name (None if no match)."""
    for pattern, repl in _BERT_RULES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    return None

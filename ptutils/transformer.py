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

import torch
from torch import nn

from .attention import MultiHeadAttention, padding_mask
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
    positional: str = "learned"  # "learned" or "sinusoidal"
    type_vocab_size: int = 0  # BERT's segment embeddings; 0 = none
    embedding_norm: bool = False  # BERT normalises the summed embeddings
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 0


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
        else:
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {cfg.positional!r}")
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.embedding_norm else None
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        if T > self.cfg.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        x = self.token(input_ids)  # (B, T, d_model)
        if self.cfg.positional == "learned":
            x = x + self.position(torch.arange(T, device=input_ids.device))  # (T, d_model) broadcast
        else:
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
        x: ``(B, T, d_model)``; mask: broadcastable to ``(B, h, T, T)``;
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

    def forward(self, x, mask=None, need_weights: bool = False):
        """Return ``(output, weights)``; ``weights`` is None unless ``need_weights``."""
        a, weights = self.self_attn(x, mask=mask, need_weights=need_weights)  # (B, T, d_model)
        x = self.norm1(x + self.dropout(a))
        x = self.norm2(x + self.dropout(self.ffn(x)))  # (B, T, d_model)
        return x, weights


class TransformerEncoder(nn.Module):
    """Embeddings followed by a stack of :class:`EncoderBlock`.

    Args:
        cfg: an :class:`EncoderConfig` (or keyword arguments for one).

    Shapes:
        input_ids: ``(B, T)`` integer token ids; attention_mask: ``(B, T)``, 1 for
        real tokens and 0 for padding; output: ``(B, T, d_model)``.
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

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states: bool = False, need_weights: bool = False):
        """Encode a batch of token ids.

        Returns:
            The final hidden states ``(B, T, d_model)``; with ``output_hidden_states``
            or ``need_weights``, a dict with ``last_hidden_state``, ``hidden_states``
            (embeddings then each block) and ``attentions`` (one ``(B, h, T, T)`` per
            block, or None).
        """
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a (B, T) tensor, got {getattr(input_ids, 'shape', input_ids)}")
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"input_ids must be an integer tensor of token ids, got {input_ids.dtype}")
        if int(input_ids.max()) >= self.cfg.vocab_size or int(input_ids.min()) < 0:
            raise ValueError(f"token ids must lie in [0, vocab_size={self.cfg.vocab_size})")
        mask = None
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids "
                                 f"{tuple(input_ids.shape)}")
            mask = padding_mask(attention_mask)  # (B, 1, 1, T)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, d_model)
        hidden, attns = [x], []
        for block in self.blocks:
            x, w = block(x, mask, need_weights=need_weights)
            hidden.append(x)
            attns.append(w)
        if output_hidden_states or need_weights:
            return {"last_hidden_state": x, "hidden_states": tuple(hidden),
                    "attentions": tuple(attns) if need_weights else None}
        return x

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


def load_state_dict_strict(model: nn.Module, state: dict) -> None:
    """Load ``state`` into ``model``, raising a readable error on any mismatch.

    Unlike a bare ``load_state_dict(strict=False)``, nothing is silently skipped:
    missing keys, unexpected keys and shape mismatches are all reported by name.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append(f"shape mismatches {shapes}")
        raise ValueError("checkpoint does not match the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)

"""Bad input names the problem; masks, empty batches and partial unfreezing do what they say.

Each test here failed before its fix: a raw matmul or reduction error, a silently
wrong answer, or a LayerNorm unfrozen where a Transformer block was asked for.
"""

import pytest
import torch
from torch import nn

import ptutils
from ptutils import (EncoderConfig, MultiHeadAttention, TransformerEncoder, attend, causal_mask,
                     padding_mask, scaled_dot_product_attention, set_seed)
from ptutils.finetune import apply_strategy
from ptutils.transformer import EncoderBlock, Embeddings


@pytest.fixture(autouse=True)
def _seed():
    set_seed(0)


def small_encoder(**kw):
    cfg = dict(vocab_size=20, d_model=8, num_heads=2, d_ff=16, num_layers=3, max_len=6)
    return TransformerEncoder(**{**cfg, **kw}).eval()


# ---------------------------------------------------------------- attention: shapes and dtypes
@pytest.mark.parametrize("q_shape,k_shape", [
    ((2, 5, 4), (3, 5, 4)),  # different batch sizes: a raw matmul error before
    ((1, 5, 4), (3, 5, 4)),  # q would broadcast silently over k's batch
    ((5, 4), (2, 5, 4)),  # different ranks
    ((2, 3, 5, 4), (2, 1, 5, 4)),  # heads that would broadcast
])
@pytest.mark.parametrize("fn", [lambda q, k, v: scaled_dot_product_attention(q, k, v),
                                lambda q, k, v: attend(q, k, v, fast=True),
                                lambda q, k, v: attend(q, k, v, fast=False)])
def test_batch_dimensions_must_agree(fn, q_shape, k_shape):
    q, k = torch.randn(q_shape), torch.randn(k_shape)
    with pytest.raises(ValueError, match=r"same batch dimensions.*q \(.*k \(.*v \("):
        fn(q, k, k)


def test_v_batch_must_match_k():
    q = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="same batch dimensions"):
        scaled_dot_product_attention(q, q, torch.randn(3, 5, 4))


def test_non_bool_masks_say_how_to_convert():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="additive"):
        scaled_dot_product_attention(q, q, q, torch.zeros(3, 3))  # an additive 0/-inf mask?
    with pytest.raises(TypeError, match=r"mask\.bool\(\)"):
        attend(q, q, q, torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="bool tensor"):
        attend(q, q, q, [[True] * 3] * 3)


def test_mask_errors_name_the_score_shape():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*q \(2, 3, 4\)"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="enlarge"):
        scaled_dot_product_attention(q, q, q, torch.ones(5, 2, 3, 3, dtype=torch.bool))


def test_padding_mask_rejects_values_other_than_0_and_1():
    with pytest.raises(ValueError, match="only 1"):
        padding_mask(torch.tensor([[1, 2, 0]]))
    with pytest.raises(TypeError, match="tensor"):
        padding_mask([[1, 1, 0]])
    assert padding_mask(torch.tensor([[1.0, 0.0]])).tolist() == [[[[True, False]]]]


# ---------------------------------------------------------------- multi-head attention: masks
def copied_reference(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(ours.d_model, ours.num_heads, batch_first=True).double().eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        ref.out_proj.bias.copy_(ours.w_o.bias)
    return ref


@pytest.mark.parametrize("need_weights", [False, True])
def test_padding_mask_by_name_is_right_when_batch_equals_length(need_weights):
    """B == T: a (B, T) mask read as (T_q, T_k) would broadcast without an error."""
    B = T = 4
    mha = MultiHeadAttention(8, 2).double().eval()
    x = torch.randn(B, T, 8, dtype=torch.float64)
    am = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    out, w = mha(x, attention_mask=am, need_weights=need_weights)
    ref_out, ref_w = copied_reference(mha)(x, x, x, key_padding_mask=~am.bool(), average_attn_weights=False)
    torch.testing.assert_close(out, ref_out)
    if need_weights:
        torch.testing.assert_close(w, ref_w)
    for b in range(B):  # each sentence alone, without its padding, gives the same real-token outputs
        n = int(am[b].sum())
        alone, _ = mha(x[b:b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0])
    torch.testing.assert_close(out, mha(x, mask=padding_mask(am))[0])  # the 4-D mask says the same


def test_padding_and_causal_masks_combine():
    B, T = 3, 5
    mha = MultiHeadAttention(8, 2).double().eval()
    x = torch.randn(B, T, 8, dtype=torch.float64)
    am = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]])
    out, _ = mha(x, mask=causal_mask(T), attention_mask=am)
    ref, _ = copied_reference(mha)(x, x, x, attn_mask=~causal_mask(T), key_padding_mask=~am.bool())
    torch.testing.assert_close(out, ref)


def test_a_padding_mask_passed_as_mask_is_rejected():
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(3, 5, 8)
    am = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]]).bool()
    with pytest.raises(ValueError, match=r"\(T_q, T_k\) = \(5, 5\).*attention_mask="):
        mha(x, mask=am)  # (B, T) = (3, 5) read as (T_q, T_k)
    with pytest.raises(ValueError, match="attention_mask="):
        mha(x[:1], mask=am[:1])  # B = 1: (1, T) broadcast as (T_q, T_k) and only happened to be right
    with pytest.raises(ValueError, match=r"mask\[:, None\]"):  # (B, T_q, T_k) with B == h was read as (h, T_q, T_k)
        mha(x[:2], mask=torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, T_k\) = \(3, 5\)"):
        mha(x, attention_mask=am[:, :4])
    with pytest.raises(ValueError, match="only 1"):
        mha(x, attention_mask=am.long() * 2)
    with pytest.raises(ValueError, match="same batch size"):
        mha(x, torch.randn(2, 5, 8))


def test_encoder_block_takes_the_padding_mask_by_name():
    block = EncoderBlock(8, 2, 16, dropout=0.0).eval()
    x = torch.randn(4, 4, 8)
    am = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    by_name, _ = block(x, attention_mask=am)
    torch.testing.assert_close(by_name, block(x, padding_mask(am))[0])
    torch.testing.assert_close(by_name[3, :1], block(x[3:, :1])[0][0])


# ---------------------------------------------------------------- embeddings and empty batches
def test_embeddings_of_an_empty_batch_are_empty():
    cfg = EncoderConfig(vocab_size=20, d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=6,
                        type_vocab_size=2, embedding_norm=True)
    emb = Embeddings(cfg).eval()
    out = emb(torch.zeros(0, 4, dtype=torch.long))
    assert out.shape == (0, 4, 8)
    with pytest.raises(ValueError, match="no positions"):
        emb(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"vocab_size=20"):
        emb(torch.tensor([[1, 25]]))  # an IndexError from nn.Embedding before
    with pytest.raises(ValueError, match=r"type_vocab_size=2"):
        emb(torch.tensor([[1, 2]]), token_type_ids=torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match="must match"):
        emb(torch.tensor([[1, 2]]), token_type_ids=torch.tensor([[0, 1, 1]]))
    with pytest.raises(TypeError, match="integer"):
        emb(torch.ones(1, 3))


@pytest.mark.parametrize("with_mask", [False, True])
def test_encoder_on_an_empty_batch_returns_an_empty_batch(with_mask):
    enc = small_encoder()
    ids = torch.zeros(0, 5, dtype=torch.long)
    am = torch.zeros(0, 5, dtype=torch.long) if with_mask else None
    out = enc(ids, am)  # a RuntimeError from ids.max() before
    assert isinstance(out, torch.Tensor) and out.shape == (0, 5, 8)
    res = enc.encode(ids, am, need_weights=True)
    assert len(res.hidden_states) == 4 and all(h.shape == (0, 5, 8) for h in res.hidden_states)
    assert all(a.shape == (0, 2, 5, 5) for a in res.attentions)
    with pytest.raises(ValueError, match="no positions"):
        enc(torch.zeros(3, 0, dtype=torch.long))


def test_segment_ids_without_segment_embeddings_are_rejected():
    enc = small_encoder()  # type_vocab_size=0
    ids = torch.tensor([[3, 4, 5]])
    torch.testing.assert_close(enc(ids, token_type_ids=torch.zeros_like(ids)), enc(ids))
    with pytest.raises(ValueError, match="no segment embeddings"):
        enc(ids, token_type_ids=torch.tensor([[0, 1, 1]]))  # silently ignored before


# ---------------------------------------------------------------- one return type
def test_encoder_returns_a_tensor_and_encode_returns_an_encoder_output():
    from ptutils.transformer import EncoderOutput

    enc = small_encoder()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    am = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    out = enc(ids, am)
    assert type(out) is torch.Tensor and out.shape == (2, 4, 8)
    res = enc.encode(ids, am)
    assert isinstance(res, EncoderOutput) and res.attentions is None
    assert len(res.hidden_states) == 1 + enc.cfg.num_layers
    torch.testing.assert_close(res.last_hidden_state, out)
    torch.testing.assert_close(res.hidden_states[-1], out)
    torch.testing.assert_close(res.hidden_states[0], enc.embeddings(ids))
    res_w = enc.encode(ids, am, need_weights=True)
    torch.testing.assert_close(res_w.last_hidden_state, out)
    assert len(res_w.attentions) == 3 and res_w.attentions[0].shape == (2, 2, 4, 4)
    assert torch.all(res_w.attentions[0][1, :, :, 2:] == 0)  # no weight on padding
    for flag in ("need_weights", "output_hidden_states"):  # the old flags that switched the type
        with pytest.raises(TypeError, match=flag):
            enc(ids, **{flag: True})


# ---------------------------------------------------------------- partial unfreezing
def trainable(*modules):
    return {id(p) for m in modules for p in m.parameters() if p.requires_grad}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_partial_unfreezes_whole_transformer_blocks(k):
    enc = small_encoder()
    head = nn.Linear(8, 2)
    n = apply_strategy(enc, head, "partial", unfreeze_last=k)
    blocks = enc.blocks[-k:]
    assert n == sum(p.numel() for p in head.parameters()) + sum(p.numel() for p in blocks.parameters())
    assert trainable(enc, head) == {id(p) for m in (head, *blocks) for p in m.parameters()}
    assert not any(p.requires_grad for p in enc.embeddings.parameters())
    with pytest.raises(ValueError, match=r"1\.\.3"):
        apply_strategy(enc, head, "partial", unfreeze_last=4)


def test_partial_unfreezes_the_last_bert_layer_of_minilm():
    _, bert = ptutils.load_text_model("minilm")  # a transformers BertModel, 6 layers
    head = nn.Linear(bert.config.hidden_size, 2)
    n = apply_strategy(bert, head, "partial", unfreeze_last=1)
    last = bert.encoder.layer[-1]
    n_last = sum(p.numel() for p in last.parameters())
    assert n == sum(p.numel() for p in head.parameters()) + n_last
    assert n_last > 1e6  # a whole block (attention and feed-forward), not a LayerNorm's 768
    assert trainable(bert) == {id(p) for p in last.parameters()}
    n2 = apply_strategy(bert, head, "partial", unfreeze_last=2)
    assert n2 - n == sum(p.numel() for p in bert.encoder.layer[-2].parameters())
    with pytest.raises(ValueError, match=r"1\.\.6"):
        apply_strategy(bert, head, "partial", unfreeze_last=7)
    apply_strategy(bert, head, "full")
    assert all(p.requires_grad for p in bert.parameters())


def test_partial_refuses_to_guess_between_two_stacks():
    two = nn.Module()
    two.encoder = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
    two.decoder = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
    with pytest.raises(ValueError, match="several stacks"):
        apply_strategy(two, nn.Linear(4, 2), "partial")


# ---------------------------------------------------------------- warnings: filtered by message, never by category
def _shown_after_setup(*warning_args):
    """The warnings that would still show after ``setup_notebook`` (filters restored afterwards)."""
    import warnings

    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        ptutils.setup_notebook(seed=0)
        for message, category, module in warning_args:
            warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)
    return [str(w.message) for w in shown]


def test_setup_notebook_hides_known_noise_only(capsys):
    from ptutils.notebook import KNOWN_NOISE

    new = [("a FutureWarning that arrives with an upgrade", FutureWarning, "transformers.modeling_utils"),
           ("a UserWarning of torch nobody has read yet", UserWarning, "torch.nn.functional")]
    assert _shown_after_setup(*new) == [m for m, _, _ in new]  # both were silenced by category before
    for pattern, category in KNOWN_NOISE:
        assert not _shown_after_setup((pattern.replace("\\", ""), category, "somewhere"))
    capsys.readouterr()


def _blanket_filters(tree):
    """``simplefilter("ignore")`` or ``filterwarnings("ignore", ...)`` with no message, in a module's AST."""
    import ast

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("simplefilter", "filterwarnings")):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        kw = {k.arg: k.value for k in node.keywords}
        if args[:1] != ["ignore"] and not (isinstance(kw.get("action"), ast.Constant) and kw["action"].value == "ignore"):
            continue
        if node.func.attr == "simplefilter" or (len(node.args) < 2 and "message" not in kw):
            yield node.lineno


def test_no_warning_is_silenced_by_category():
    import ast
    import tomllib
    from pathlib import Path

    root = Path(ptutils.__file__).parent
    blanket = [f"{p.relative_to(root.parent)}:{line}" for p in sorted(root.rglob("*.py"))
               for line in _blanket_filters(ast.parse(p.read_text()))]
    assert not blanket, f"warnings silenced without naming their message: {blanket}"
    ini = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    for entry in ini.get("filterwarnings", []):
        action, message, *_ = entry.split(":") + [""]
        assert action != "ignore" or message.strip(), f"pytest ignores a whole category: {entry!r}"

"""Causal LM (ptutils.lm) and the masked-LM measures and next-sentence pairs of ptutils.mlm."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, BertForNextSentencePrediction

import ptutils
from ptutils import lm
from ptutils.mlm import (make_blocks, mask_tokens, mlm_position_metrics, nsp_pairs, nsp_predictions,
                         overlap_baseline, picked_positions, train_nsp, train_wordpiece, unigram_log_probs,
                         unigram_position_metrics)


# --- characters and the bigram baseline -------------------------------------------------

def test_char_tokenizer_round_trip_and_refuses_unknown_characters():
    tok = lm.CharTokenizer("hello world")
    assert len(tok) == 8 and tok.decode(tok.encode("low hello")) == "low hello"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("hello!")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([0, 99])
    with pytest.raises(ValueError, match="empty"):
        lm.CharTokenizer("")


def test_char_splits_keep_documents_whole_and_disjoint():
    docs = [f"doc{i} " + "ab" * (i + 1) for i in range(20)]
    tok, tr, va, te = lm.char_splits(docs, val_fraction=0.1, test_fraction=0.1, seed=0)
    pieces = {k: tok.decode(v).split(lm.DOC_SEPARATOR) for k, v in (("tr", tr), ("va", va), ("te", te))}
    assert sorted(sum(pieces.values(), [])) == sorted(docs)  # every document once, whole
    assert not set(pieces["tr"]) & set(pieces["te"]) and not set(pieces["va"]) & set(pieces["te"])
    assert lm.char_splits(docs, seed=0)[1].tolist() == lm.char_splits(docs, seed=0)[1].tolist()
    with pytest.raises(ValueError, match="sum below 1"):
        lm.char_splits(docs, val_fraction=0.6, test_fraction=0.5)


def test_bigram_equals_a_hand_count():
    ids = torch.tensor([0, 1, 0, 1, 1, 2])  # pairs: 01 10 01 11 12
    b = lm.BigramLM(3, alpha=1.0).fit(ids)
    assert b.counts.tolist() == [[0, 2, 0], [1, 1, 1], [0, 0, 0]]
    p = b.log_probs().exp()
    assert p[0].tolist() == pytest.approx([1 / 5, 3 / 5, 1 / 5])  # (0+1, 2+1, 0+1) / (2 + 3)
    assert p[2].tolist() == pytest.approx([1 / 3] * 3)  # never seen: uniform
    held = torch.tensor([0, 1, 2])
    assert b.loss(held) == pytest.approx(-(math.log(3 / 5) + math.log(2 / 6)) / 2)
    with pytest.raises(ValueError, match="lie in"):
        b.fit(torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="int64"):
        b.fit(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="positive"):
        lm.BigramLM(3, alpha=0)
    s = b.sample(0, 50, torch.Generator().manual_seed(0))
    assert s.shape == (50,) and torch.equal(s, b.sample(0, 50, torch.Generator().manual_seed(0)))


# --- the GPT --------------------------------------------------------------------------

@pytest.fixture()
def gpt():
    ptutils.set_seed(0)
    return lm.GPT(lm.GPTConfig(vocab_size=11, block_size=8, d_model=16, num_heads=2, num_layers=2, d_ff=32)).eval()


def test_gpt_is_causal_and_ties_its_embedding(gpt):
    ids = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11  # change the future
    with torch.no_grad():
        a, b = gpt(ids), gpt(changed)
    assert a.shape == (2, 8, 11)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])
    assert gpt.head.weight is gpt.tok.weight


def test_gpt_refuses_bad_input(gpt):
    with pytest.raises(ValueError, match="block_size"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="lie in"):
        gpt(torch.full((1, 3), 11))
    with pytest.raises(TypeError, match="int64"):
        gpt(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="int64"):
        gpt(torch.zeros(1, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="divisible"):
        lm.GPTConfig(vocab_size=5, d_model=10, num_heads=3)


def test_causal_lm_loss_is_shifted_cross_entropy(gpt):
    ids = torch.randint(11, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = gpt(ids[:, :-1])
        by_hand = sum(F.cross_entropy(logits[:, t], ids[:, t + 1]) for t in range(8)) / 8
        assert float(lm.causal_lm_loss(gpt, ids)) == pytest.approx(float(by_hand), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        lm.causal_lm_loss(gpt, ids[:, :1])


def test_lm_loss_scores_every_token_once(gpt):
    stream = torch.randint(11, (30,), generator=torch.Generator().manual_seed(2))  # 3 full windows + a short one
    with torch.no_grad():
        total = 0.0
        for s in range(0, 29, 8):
            w = stream[s:s + 9][None]
            total += float(lm.causal_lm_loss(gpt, w)) * (w.shape[1] - 1)
    assert lm.lm_loss(gpt, stream, batch_size=2) == pytest.approx(total / 29, rel=1e-5)
    assert lm.lm_loss(gpt, stream) == pytest.approx(total / 29, rel=1e-5)


def test_generation_is_seeded_greedy_at_top_k_1_and_checks_arguments(gpt):
    prompt = torch.tensor([1, 2, 3])
    a = lm.generate(gpt, prompt, 20, generator=torch.Generator().manual_seed(0))
    b = lm.generate(gpt, prompt, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and len(a) == 23 and torch.equal(a[:3], prompt)  # longer than block_size
    greedy = lm.generate(gpt, prompt, 5, top_k=1, generator=torch.Generator().manual_seed(7))
    ids = prompt.clone()
    with torch.no_grad():
        for _ in range(5):
            ids = torch.cat([ids, gpt(ids[-8:][None])[0, -1].argmax()[None]])
    assert torch.equal(greedy, ids)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(gpt, prompt, 1, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        lm.generate(gpt, prompt, 1, top_k=12)
    with pytest.raises(ValueError, match="at least one"):
        lm.generate(gpt, prompt[:0], 1)


def test_pretraining_beats_the_bigram_on_a_pattern_it_needs_context_for():
    # "abcabd" repeated: after "b" the bigram cannot know whether "c" or "d" follows; two steps of context can.
    text = "abcabd" * 400
    tok = lm.CharTokenizer(text)
    ids = tok.encode(text)
    train, val = ids[:2000], ids[2000:]
    bigram = lm.BigramLM(len(tok)).fit(train)
    ptutils.set_seed(0)
    model = lm.GPT(lm.GPTConfig(len(tok), block_size=12, d_model=32, num_heads=2, num_layers=2, d_ff=64))
    seen = []
    h = lm.pretrain_causal_lm(model, train, val, steps=300, eval_every=100, batch_size=16, lr=1e-2, warmup=10,
                              on_eval=lambda step, m: seen.append(step))
    assert seen == h["step"] == [100, 200, 300] and len(h["val_loss"]) == 3
    assert h["val_loss"][-1] < h["initial_val_loss"]
    assert bigram.loss(val) > 0.2  # 2 ln 2 / 6 per character: the c-or-d choice after each "b"
    assert h["val_loss"][-1] < 0.1 < bigram.loss(val)
    with pytest.raises(ValueError, match="multiple"):
        lm.pretrain_causal_lm(model, train, val, steps=10, eval_every=3)


# --- masked LM measured at [MASK] positions --------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    texts = [" ".join(d) for d in ptutils.data.load_text_corpus("lee")]
    tok = train_wordpiece(texts, vocab_size=1000)
    blocks = make_blocks(texts, tok, block=30)
    ptutils.set_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    return tok, blocks, model.eval()


def test_picked_positions_partition_the_masked_tokens(tiny):
    tok, blocks, _ = tiny
    inputs, labels = mask_tokens(blocks[:50], tok, torch.Generator().manual_seed(0))
    kinds = picked_positions(inputs, labels, tok.mask_token_id)
    total = kinds["mask"].long() + kinds["unchanged"].long() + kinds["random"].long()
    assert torch.equal(total.bool(), labels != -100) and total.max() == 1
    assert (inputs[kinds["mask"]] == tok.mask_token_id).all()
    assert torch.equal(inputs[kinds["unchanged"]], blocks[:50][kinds["unchanged"]])
    assert (inputs[kinds["random"]] != blocks[:50][kinds["random"]]).all()


def test_mask_only_metrics_by_hand_and_on_the_same_positions_as_the_baseline(tiny):
    tok, blocks, model = tiny
    inputs, labels = mask_tokens(blocks[:20], tok, torch.Generator().manual_seed(3))
    where = picked_positions(inputs, labels, tok.mask_token_id)["mask"]
    with torch.no_grad():
        logits = model(inputs).logits[where]
    targets = labels[where]
    got = mlm_position_metrics(model, inputs, labels, tok, kind="mask", topk=5, batch_size=7)
    assert got["n"] == int(where.sum())
    assert got["loss"] == pytest.approx(float(F.cross_entropy(logits, targets)), rel=1e-5)
    assert got["top1"] == pytest.approx(float((logits.argmax(-1) == targets).float().mean()))
    assert got["top5"] == pytest.approx(float((logits.topk(5).indices == targets[:, None]).any(1).float().mean()))
    log_p = unigram_log_probs(blocks, tok)
    assert torch.isinf(log_p[tok.mask_token_id]) and log_p.exp().sum() == pytest.approx(1.0)
    base = unigram_position_metrics(log_p, inputs, labels, tok, kind="mask")
    assert base["n"] == got["n"]
    assert base["loss"] == pytest.approx(float(-log_p[targets].mean()), rel=1e-9)
    assert base["top1"] == pytest.approx(float((targets == log_p.argmax()).float().mean()))
    assert torch.allclose(got["losses"], F.cross_entropy(logits.double(), targets, reduction="none"))
    assert torch.equal(base["losses"], -log_p.double()[targets]) and torch.equal(got["target"], targets)
    allpos = mlm_position_metrics(model, inputs, labels, tok, kind="all")
    assert allpos["n"] == int((labels != -100).sum()) > got["n"]
    with pytest.raises(ValueError, match="kind"):
        mlm_position_metrics(model, inputs, labels, tok, kind="masked")
    with pytest.raises(ValueError, match="no picked"):
        mlm_position_metrics(model, inputs, torch.full_like(labels, -100), tok)
    with pytest.raises(ValueError, match="shape"):
        unigram_position_metrics(log_p[:-1], inputs, labels, tok)


def test_a_copying_model_looks_good_on_unchanged_positions_only(tiny):
    """Why loss over all picked positions misleads: a model that copies its input wins where the token is unchanged."""
    tok, blocks, _ = tiny
    inputs, labels = mask_tokens(blocks[:40], tok, torch.Generator().manual_seed(4))

    class Copy(torch.nn.Module):  # a "masked LM" whose logits put all mass on the input token
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.bert = lambda ids: type("O", (), {"last_hidden_state": F.one_hot(ids, len(tok)).float() * 20})
            self.cls = lambda h: h

    copy = Copy()
    assert mlm_position_metrics(copy, inputs, labels, tok, kind="unchanged")["top1"] == 1.0
    assert mlm_position_metrics(copy, inputs, labels, tok, kind="mask")["top1"] == 0.0


# --- next-sentence prediction ----------------------------------------------------------

DOCS = [[f"d{d}w{i}" for i in range(40)] for d in range(6)]


def test_nsp_pairs_follow_berts_recipe():
    pairs = nsp_pairs(DOCS, segment_words=5, n_pairs=400, generator=torch.Generator().manual_seed(0))
    assert 0.4 < sum(y for _, _, y in pairs) / len(pairs) < 0.6
    for a, b, y in pairs:
        da, ia = a.split()[0].split("w")
        db, ib = b.split()[0].split("w")
        if y == 1:
            assert da == db and int(ib) == int(ia) + 5  # B is the segment right after A
        else:
            assert da != db  # another document
    same = nsp_pairs(DOCS, segment_words=5, n_pairs=400, generator=torch.Generator().manual_seed(0),
                     negatives="same-document")
    for a, b, y in same:
        da, ia = a.split()[0].split("w")
        db, ib = b.split()[0].split("w")
        assert da == db and (y == 1) == (int(ib) == int(ia) + 5) and (y == 1 or abs(int(ib) - int(ia)) > 5)
    with pytest.raises(ValueError, match="too short"):
        nsp_pairs([["a", "b"]], segment_words=5, n_pairs=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="negatives"):
        nsp_pairs(DOCS, segment_words=5, n_pairs=1, generator=torch.Generator(), negatives="random")
    with pytest.raises(ValueError, match="no other document"):  # the other document is too short for a segment
        nsp_pairs([DOCS[0], ["w"] * 3], segment_words=5, n_pairs=20, generator=torch.Generator().manual_seed(0))


def test_overlap_baseline_solves_other_document_pairs_by_topic_alone():
    # each document repeats its own few words: topic overlap tells IsNext from other-document NotNext
    docs = [[f"t{d}x{i % 7}" for i in range(200)] for d in range(10)]
    g = torch.Generator().manual_seed(0)
    train = nsp_pairs(docs, segment_words=8, n_pairs=300, generator=g)
    test = nsp_pairs(docs, segment_words=8, n_pairs=300, generator=g)
    r = overlap_baseline(train, test)
    assert r["accuracy"] > 0.95 and r["coef"] > 0 and r["pred"].shape == (300,)
    same_tr = nsp_pairs(docs, segment_words=8, n_pairs=300, generator=g, negatives="same-document")
    same_te = nsp_pairs(docs, segment_words=8, n_pairs=300, generator=g, negatives="same-document")
    assert overlap_baseline(same_tr, same_te)["accuracy"] < 0.7  # same topic on both sides: no cue left


def test_nsp_training_runs_and_predicts_labels(tiny):
    tok, _, mlm_model = tiny
    clf = BertForNextSentencePrediction(mlm_model.config)
    docs = [" ".join(d).split() for d in DOCS]
    pairs = nsp_pairs(docs, segment_words=5, n_pairs=64, generator=torch.Generator().manual_seed(1))
    h = train_nsp(clf, tok, pairs, epochs=1, batch_size=16, max_length=32)
    assert len(h["loss"]) == 1 and math.isfinite(h["loss"][0])
    pred = nsp_predictions(clf, tok, pairs, batch_size=20, max_length=32)
    assert pred.shape == (64,) and set(pred.tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="no sentence pairs"):
        train_nsp(clf, tok, [], epochs=1)


def test_text_features_average_every_character_of_every_chunk(gpt):
    tok = lm.CharTokenizer("abcdefghij ")
    texts = ["Abc, DEF!", "a" * 20, "j"]
    assert lm.normalise_text("Abc, DEF!", tok) == "abc def"
    feats = lm.text_features(gpt, tok, texts, batch_size=2)
    assert feats.shape == (3, 16)
    with torch.no_grad():
        ids = tok.encode("a" * 20)
        by_hand = torch.cat([gpt.hidden(ids[s:s + 8][None])[0] for s in range(0, 20, 8)]).mean(0)
        assert torch.allclose(feats[1], by_hand, atol=1e-5)
        assert torch.allclose(feats[0], gpt.hidden(tok.encode("abc def")[None])[0].mean(0), atol=1e-5)


def test_token_losses_align_with_the_bigrams_and_the_block_bootstrap():
    from ptutils.metrics import block_bootstrap_mean

    ptutils.set_seed(0)
    model = lm.GPT(lm.GPTConfig(vocab_size=5, block_size=4, d_model=8, num_heads=2, num_layers=1, d_ff=16))
    stream = torch.randint(5, (23,), generator=torch.Generator().manual_seed(0))
    per = lm.token_losses(model, stream, batch_size=2)
    assert per.shape == (22,) and float(per.mean()) == pytest.approx(lm.lm_loss(model, stream))
    with torch.no_grad():  # token 6 is predicted from tokens 4, 5 (its window starts at 4)
        assert float(per[5]) == pytest.approx(float(F.cross_entropy(model(stream[4:6][None])[0, -1:], stream[6:7])),
                                              rel=1e-5)
    assert lm.BigramLM(5).fit(stream).token_losses(stream).shape == per.shape
    r = block_bootstrap_mean(per.numpy(), 5)
    assert r["blocks"] == 4
    assert r["low"] <= r["high"]
    assert r["low"] <= float(per[:20].mean()) <= r["high"]  # the resampled blocks' own mean lies inside
    const = block_bootstrap_mean([2.0] * 10, 5)
    assert const["low"] == const["high"] == const["mean"] == 2.0
    with pytest.raises(ValueError, match="at least 2"):
        block_bootstrap_mean([1.0] * 9, 5)

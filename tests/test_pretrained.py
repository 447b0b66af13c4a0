"""The packaged MiniLM loads offline, and the from-scratch encoder reproduces it."""

import numpy as np
import pytest
import torch

import ptutils
from ptutils import TransformerEncoder


@pytest.fixture(scope="module")
def minilm():
    return ptutils.load_text_model("minilm")


def test_minilm_is_local_and_offline():
    path = ptutils.minilm_path()
    assert (path / "model.safetensors").stat().st_size > 80e6
    assert ptutils.model_source("minilm") == str(path)
    with pytest.raises(RuntimeError, match="PTUTILS_ONLINE"):
        ptutils.model_source("bert-base-uncased")


def test_from_hf_matches_transformers(minilm):
    tok, hf = minilm
    ours = TransformerEncoder.from_hf(hf)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_hf = sum(p.numel() for n, p in hf.named_parameters() if not n.startswith("pooler."))
    assert n_ours == n_hf
    batch = tok(["The film is a delight.", "A dull, tedious and overlong mess of a movie."],
                padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf(**batch).last_hidden_state
        out = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    assert (out - ref)[real].abs().max() < 1e-5


def test_from_hf_rejects_other_models():
    class Cfg:
        model_type = "gpt2"

    class Fake(torch.nn.Module):
        config = Cfg()

    with pytest.raises(ValueError, match="BERT"):
        TransformerEncoder.from_hf(Fake())


def test_sentence_embeddings_are_normalised(minilm):
    tok, model = minilm
    emb = ptutils.sentence_embeddings(["good", "bad film"], tok, model)
    assert emb.shape == (2, 384)
    assert abs(float((emb ** 2).sum(1).mean()) - 1) < 1e-5
    with pytest.raises(ValueError, match="non-empty"):
        ptutils.sentence_embeddings("oops", tok, model)


def test_finetune_hf_runs_with_labels_and_schedule(monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from ptutils.finetune import finetune_hf, predict_hf
    ptutils.set_seed(0)
    tok, _ = ptutils.load_text_model("minilm")
    model, info = AutoModelForSequenceClassification.from_pretrained(
        ptutils.model_source("minilm"), num_labels=2, local_files_only=True, output_loading_info=True)
    assert info["missing_keys"] == {"classifier.weight", "classifier.bias"} and not info["unexpected_keys"]
    texts, labels = ptutils.load_polarity()
    idx = list(range(0, 200, 10))
    before = model.classifier.weight.detach().clone()
    lrs, step = [], torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):  # the learning rate of every update, as AdamW sees it
        lrs.append(sorted({g["lr"] for g in self.param_groups}))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    h = finetune_hf(model, tok, [texts[i] for i in idx], labels[idx], epochs=2, batch_size=8,
                    lr=1e-4, warmup_ratio=0.5)
    # 20 examples in batches of 8: 3 steps an epoch, 6 in all; warm-up over the first 3, then linear decay
    expected = [1e-4 * f for f in (0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3)]
    assert [g[0] for g in lrs] == pytest.approx(expected) and all(len(g) == 1 for g in lrs)
    assert len(h["loss"]) == 2 and all(0.3 < l < 1.2 for l in h["loss"])  # near ln 2 for a fresh 2-class head
    assert not torch.equal(before, model.classifier.weight)
    pred = predict_hf(model, tok, texts[:5])
    assert pred.shape == (5,) and set(pred.tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="labels"):
        finetune_hf(model, tok, texts[:3], labels[:2])
    for bad in (0, -4, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be a whole number"):
            finetune_hf(model, tok, texts[:3], labels[:3], batch_size=bad)


def test_minilm_max_tokens_is_the_models_own_setting():
    import json

    from ptutils.pretrained import MINILM_MAX_TOKENS, minilm_path

    cfg = json.loads((minilm_path() / "sentence_bert_config.json").read_text())
    assert MINILM_MAX_TOKENS == cfg["max_seq_length"] == 256


def test_sentence_embeddings_equal_sentence_transformers_encode(minilm):
    """The recipe is the model's own: same truncation, pooling and normalisation as
    SentenceTransformer.encode, on sentences shorter than, between and beyond 128 and 256 tokens."""
    from sentence_transformers import SentenceTransformer

    from ptutils.pretrained import minilm_path

    tok, model = minilm
    words = "the film is a slow but rewarding study of grief , and its cast is superb".split()
    texts = ["good", "a bad , bad film", " ".join(words * 12), " ".join(words * 30),
             " ".join(reversed(words * 40)), "an honest , small movie"]
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    assert max(lengths) > 256 and any(128 < n <= 256 for n in lengths)
    st = SentenceTransformer(str(minilm_path()), device="cpu")
    want = st.encode(texts, batch_size=4, convert_to_numpy=True)
    got = ptutils.sentence_embeddings(texts, tok, model, batch_size=4)
    assert got.shape == want.shape == (len(texts), 384)
    assert np.abs(got - want).max() < 1e-5
    # The test can fail: the old 128-token truncation differs on the long sentences.
    old = ptutils.sentence_embeddings(texts, tok, model, batch_size=4, max_length=128)
    assert np.abs(old - want).max() > 1e-3


@pytest.mark.parametrize("kw", [{"batch_size": 0}, {"batch_size": 2.5}, {"max_length": 0}, {"batch_size": True}])
def test_sentence_embeddings_refuse_bad_sizes(minilm, kw):
    tok, model = minilm
    with pytest.raises(ValueError, match=next(iter(kw))):
        ptutils.sentence_embeddings(["good"], tok, model, **kw)

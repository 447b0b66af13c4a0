import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

import ptutils
from ptutils.data import load_text_corpus
from ptutils.mlm import fill_mask, make_blocks, mask_tokens, mlm_loss, pretrain_mlm, train_wordpiece


@pytest.fixture(scope="module")
def tok():
    texts = [" ".join(d) for d in load_text_corpus("lee")]
    return train_wordpiece(texts, vocab_size=2000), texts


def test_tokenizer_has_its_vocabulary(tok):
    t, _ = tok
    assert len(t) == 2000 and t.mask_token == "[MASK]"
    assert t.convert_ids_to_tokens(t.mask_token_id) == "[MASK]" and t.mask_token_id != t.unk_token_id
    assert t.tokenize("the government") == ["the", "government"]
    assert t("hi")["input_ids"][0] == t.cls_token_id
    with pytest.raises(ValueError, match="no texts"):
        train_wordpiece([])


def test_masking_rule(tok):
    t, texts = tok
    blocks = make_blocks(texts, t, block=30)
    assert blocks.shape[1] == 32 and (blocks[:, 0] == t.cls_token_id).all()
    inputs, labels = mask_tokens(blocks, t, torch.Generator().manual_seed(0))
    picked = labels != -100
    assert 0.13 < picked[:, 1:-1].float().mean() < 0.17
    assert not picked[:, 0].any() and not picked[:, -1].any()  # never [CLS]/[SEP]
    assert torch.equal(labels[picked], blocks[picked])
    assert torch.equal(inputs[~picked], blocks[~picked])
    is_mask = (inputs[picked] == t.mask_token_id).float().mean()
    unchanged = (inputs[picked] == blocks[picked]).float().mean()
    assert 0.76 < is_mask < 0.84 and 0.08 < unchanged < 0.13


def test_masked_only_loss_equals_full_loss_and_training_helps(tok):
    t, texts = tok
    blocks = make_blocks(texts, t, block=30)
    ptutils.set_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(t), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)).eval()
    inputs, labels = mask_tokens(blocks[:8], t, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(mlm_loss(model, inputs, labels), model(inputs, labels=labels).loss, atol=1e-5)
    with pytest.raises(ValueError, match="no masked"):
        mlm_loss(model, inputs, torch.full_like(labels, -100))
    h = pretrain_mlm(model, blocks[:400], blocks[400:480], t, epochs=2, batch_size=32)
    assert h["val_loss"][-1] < h["initial_val_loss"] and len(h["loss"]) == len(h["val_loss"]) == 2
    enc = t("the [MASK] said", return_tensors="pt")
    at = int((enc["input_ids"][0] == t.mask_token_id).nonzero())  # the [MASK]'s position (after [CLS])
    with torch.no_grad():
        best = model(**enc).logits[0, at].topk(3).indices.tolist()
    assert fill_mask(model, t, "the [MASK] said", topk=3) == t.convert_ids_to_tokens(best)
    with pytest.raises(ValueError, match="exactly one"):
        fill_mask(model, t, "no mask here")


"""Masked language modelling (MLM): BERT's self-supervised objective, on a tiny BERT.

Pick 15% of the (non-special) tokens; of those, replace 80% with ``[MASK]``, 10%
with a random token, and leave 10% unchanged; train the model to predict the
original token at every picked position. The loss is computed only at the picked
positions, which saves most of the output layer's work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: BERT's special tokens, first in the WordPiece vocabulary (word-level ones: :data:`ptutils.data.PAD`).
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts, vocab_size: int = 8000):
    """Train a BERT-style WordPiece tokenizer on ``texts``; return a ``PreTrainedTokenizerFast``.

    The trained ``tokenizers`` object is wrapped directly (``tokenizer_object=``):
    building ``BertTokenizerFast(vocab_file=...)`` from a vocabulary file can silently
    produce a tokenizer with only the special tokens in transformers 5, so the
    vocabulary size is checked.

    Training is deterministic. ``tokenizers``' WordPiece trainer numbers the ``##``
    continuation pieces in hash-map order, and those numbers break ties between
    equally frequent merges, so the same texts gave different vocabularies from run to
    run (huggingface/tokenizers#1794). Every continuation piece of the texts is
    therefore given a fixed id (sorted, after BERT's special tokens) before training,
    and the trained vocabulary is loaded into a fresh tokenizer whose only special
    tokens are BERT's five.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("no texts to train the tokenizer on")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    continuation = sorted({c for t in texts for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(t))
                           for c in w[1:]})
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=WORDPIECE_SPECIALS + [f"##{c}" for c in continuation]))
    trained, tok = tok, Tokenizer(models.WordPiece(tok.get_vocab(), unk_token="[UNK]"))  # the same vocabulary...
    tok.normalizer, tok.pre_tokenizer, tok.decoder = trained.normalizer, trained.pre_tokenizer, trained.decoder
    tok.add_special_tokens(WORDPIECE_SPECIALS)  # ...with only BERT's special tokens marked special
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                 cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    if len(hf) != tok.get_vocab_size() or len(hf) <= len(WORDPIECE_SPECIALS):
        raise RuntimeError(f"wrapped tokenizer has {len(hf)} tokens, trained one {tok.get_vocab_size()}")
    return hf


def make_blocks(texts, tokenizer, block: int = 62) -> torch.Tensor:
    """Concatenate the token ids of all texts and cut them into ``[CLS] ... [SEP]`` blocks.

    Shapes:
        output: ``(N, block + 2)`` int64.
    """
    ids = [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]
    n = len(ids) // block
    if n == 0:
        raise ValueError(f"only {len(ids)} tokens: not enough for one block of {block}")
    body = torch.tensor(ids[: n * block]).view(n, block)
    cls = torch.full((n, 1), tokenizer.cls_token_id)
    sep = torch.full((n, 1), tokenizer.sep_token_id)
    return torch.cat([cls, body, sep], 1)


def mask_tokens(input_ids: torch.Tensor, tokenizer, generator: torch.Generator, mlm_prob: float = 0.15):
    """BERT's 80/10/10 masking. Returns ``(inputs, labels)``; labels are -100 where nothing is predicted.

    Shapes:
        input_ids: ``(B, T)``; inputs, labels: ``(B, T)``.
    """
    labels = input_ids.clone()
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    picked = (torch.rand(input_ids.shape, generator=generator) < mlm_prob) & ~special
    labels[~picked] = -100
    inputs = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs[picked & (roll < 0.8)] = tokenizer.mask_token_id  # 80%: [MASK]
    rand_pos = picked & (roll >= 0.8) & (roll < 0.9)  # 10%: a random token
    inputs[rand_pos] = torch.randint(len(tokenizer), input_ids.shape, generator=generator)[rand_pos]
    return inputs, labels  # the other 10%: unchanged, but still predicted


def mlm_loss(model, inputs: torch.Tensor, labels: torch.Tensor, attention_mask=None) -> torch.Tensor:
    """Cross-entropy at the masked positions only (a ``BertForMaskedLM``'s encoder and head).

    Equal to ``model(inputs, labels=labels).loss``, but the vocabulary projection is
    applied only where ``labels != -100``, not at every position.
    """
    hidden = model.bert(inputs, attention_mask=attention_mask).last_hidden_state  # (B, T, d)
    picked = labels != -100
    if not picked.any():
        raise ValueError("no masked positions in this batch")
    logits = model.cls(hidden[picked])  # (n_masked, vocab)
    return F.cross_entropy(logits, labels[picked])


def mlm_step(model, batch) -> torch.Tensor:
    """The masked-LM loss of one batch ``(inputs, labels)`` (:func:`mlm_loss`)."""
    inputs, labels = batch
    return mlm_loss(model, inputs, labels)


def pretrain_mlm(model, train_blocks: torch.Tensor, val_blocks: torch.Tensor, tokenizer, *,
                 epochs: int = 5, lr: float = 5e-4, batch_size: int = 64, seed: int = 0,
                 log: bool = False, device=None, progress: str | None = "MLM pre-training") -> dict:
    """Pre-train with MLM by :func:`ptutils.training.fit`; held-out loss after every epoch.

    Every batch is masked afresh (:func:`mask_tokens`); the held-out blocks are masked
    once, with a fixed seed, so every epoch is scored on the same positions. AdamW
    (weight decay 0.01 on weight matrices), 5 % linear warm-up then linear decay.

    Returns:
        The history of :func:`ptutils.training.fit` with ``"loss"`` and ``"val_loss"`` per
        epoch, and ``"initial_val_loss"`` (the held-out loss before any training).
    """
    from .training import fit, linear_warmup, shuffled

    val_inputs, val_labels = mask_tokens(val_blocks, tokenizer, torch.Generator().manual_seed(seed + 1))
    steps = epochs * -(-len(train_blocks) // batch_size)
    if device is not None:
        model.to(device)
    initial = held_out_loss(model, val_inputs, val_labels)

    def batches(g):
        for idx in shuffled(len(train_blocks), batch_size, g):
            yield mask_tokens(train_blocks[idx], tokenizer, g)

    hist = fit(model, mlm_step, batches, epochs=epochs, lr=lr, weight_decay=0.01,
               schedule=linear_warmup(steps, int(0.05 * steps)), seed=seed,
               on_epoch_end=lambda epoch, m: {"val_loss": held_out_loss(m, val_inputs, val_labels)},
               log_every=1 if log else 0, loss_name="train MLM loss", device=device, progress=progress)
    hist["initial_val_loss"] = initial
    return hist


@torch.no_grad()
def held_out_loss(model, inputs, labels, batch_size: int = 256) -> float:
    """Mean cross-entropy over every masked position of ``inputs`` (each position weighs the same)."""
    model.eval()
    where = next(model.parameters()).device
    total, n = 0.0, 0
    for i in range(0, len(inputs), batch_size):
        lab = labels[i:i + batch_size]
        k = int((lab != -100).sum())
        if k == 0:
            continue
        total += mlm_loss(model, inputs[i:i + batch_size].to(where), lab.to(where)).item() * k
        n += k
    if n == 0:
        raise ValueError("no masked positions in the held-out blocks")
    return total / n


def picked_positions(inputs: torch.Tensor, labels: torch.Tensor, mask_token_id: int) -> dict:
    """The three kinds of picked position of :func:`mask_tokens`, as bool ``(B, T)`` tensors.

    ``"mask"``: replaced by ``[MASK]`` (80 %); ``"unchanged"``: left as they were (10 %),
    where a model can score well by copying its input; ``"random"``: replaced by a
    random token (10 %; a random draw that hits the original token counts as unchanged).
    """
    if inputs.shape != labels.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and labels {tuple(labels.shape)} differ in shape")
    picked = labels != -100
    masked = picked & (inputs == mask_token_id)
    unchanged = picked & ~masked & (inputs == labels)
    return {"mask": masked, "unchanged": unchanged, "random": picked & ~masked & ~unchanged}


def _position_metrics(logits: torch.Tensor, targets: torch.Tensor, topk: int) -> dict:
    top = logits.topk(topk, dim=-1).indices  # (n, topk)
    losses = F.cross_entropy(logits.double(), targets, reduction="none")  # (n,)
    return _sums(losses, top, targets, topk)


def _sums(losses, top, targets, topk: int) -> dict:
    return {"loss": float(losses.sum()), "top1": float((top[:, 0] == targets).sum()),
            f"top{topk}": float((top == targets[:, None]).any(1).sum()), "n": int(len(targets)),
            "pred": top[:, 0], "target": targets, "losses": losses}


@torch.no_grad()
def mlm_position_metrics(model, inputs, labels, tokenizer, *, kind: str = "mask", topk: int = 5,
                         batch_size: int = 256) -> dict:
    """Held-out loss (nats), top-1 and top-``k`` accuracy of a masked LM at one kind of picked position.

    ``kind="mask"`` scores only the positions the model saw as ``[MASK]``, the honest
    measure of what it infers from context (:func:`picked_positions`); ``"all"`` is the
    mix :func:`held_out_loss` averages.

    ``inputs`` are unpadded blocks (as :func:`make_blocks` cuts them): no attention mask
    is applied.

    Returns:
        ``{"loss", "top1", "top<k>", "n"}`` (means over the ``n`` positions), and, at each
        position in order, ``"pred"`` (top-1 prediction), ``"target"`` (the true token)
        and ``"losses"`` (cross-entropy), for paired comparisons
        (:func:`ptutils.metrics.paired_bootstrap`, :func:`ptutils.metrics.block_bootstrap_mean`).
    """
    model.eval()
    where = next(model.parameters()).device
    sums = None
    for i in range(0, len(inputs), batch_size):
        inp, lab = inputs[i:i + batch_size], labels[i:i + batch_size]
        sel = _select(inp, lab, tokenizer, kind)
        if not sel.any():
            continue
        hidden = model.bert(inp.to(where)).last_hidden_state[sel.to(where)]  # (n, d)
        part = _position_metrics(model.cls(hidden).cpu(), lab[sel], topk)
        sums = part if sums is None else {k: (torch.cat([sums[k], part[k]]) if k in _PER_POSITION
                                              else sums[k] + part[k]) for k in sums}
    return _means(sums, kind)


def unigram_position_metrics(log_p: torch.Tensor, inputs, labels, tokenizer, *, kind: str = "mask",
                             topk: int = 5) -> dict:
    """The same measures for a context-free predictor: every position gets the distribution ``log_p``.

    ``log_p``: ``(V,)`` log-probabilities, e.g. token frequencies of the training blocks.
    Scored on exactly the positions :func:`mlm_position_metrics` scores.
    """
    if log_p.dim() != 1 or len(log_p) != len(tokenizer):
        raise ValueError(f"log_p must have shape ({len(tokenizer)},), got {tuple(log_p.shape)}")
    sel = _select(inputs, labels, tokenizer, kind)
    if not sel.any():
        return _means(None, kind)
    targets = labels[sel]
    top = log_p.topk(topk).indices.expand(len(targets), -1)  # the same guesses at every position
    return _means(_sums(-log_p.double()[targets], top, targets, topk), kind)


def _select(inputs, labels, tokenizer, kind: str) -> torch.Tensor:
    kinds = picked_positions(inputs, labels, tokenizer.mask_token_id)
    if kind == "all":
        return labels != -100
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds) + ['all']}, got {kind!r}")
    return kinds[kind]


def _means(sums, kind: str) -> dict:
    if sums is None or sums["n"] == 0:
        raise ValueError(f"no picked positions of kind {kind!r}")
    return {k: (v if k in ("n", *_PER_POSITION) else v / sums["n"]) for k, v in sums.items()}


_PER_POSITION = ("pred", "target", "losses")


def unigram_log_probs(blocks: torch.Tensor, tokenizer, alpha: float = 1.0) -> torch.Tensor:
    """``(V,)`` add-``alpha`` log-frequencies of the non-special tokens of ``blocks`` (special tokens: -inf,
    since :func:`mask_tokens` never asks for one)."""
    counts = torch.bincount(blocks.flatten(), minlength=len(tokenizer)).double() + alpha
    counts[torch.tensor(tokenizer.all_special_ids)] = 0.0
    return (counts / counts.sum()).log()


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, topk: int = 5) -> list[str]:
    """The ``topk`` predictions for the single ``[MASK]`` in ``text``."""
    enc = tokenizer(text, return_tensors="pt")
    pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if len(pos) != 1:
        raise ValueError(f"text must contain exactly one [MASK], found {len(pos)}")
    model.eval()
    logits = model(**enc.to(next(model.parameters()).device)).logits[0, pos[0, 0]]
    return tokenizer.convert_ids_to_tokens(logits.topk(topk).indices.tolist())



# --- The book's tiny BERT: one recipe, shared by the chapter that makes it and those that reuse it ---

def tiny_bert_settings() -> dict:
    """The settings of chapter 8's tiny BERT, in the current mode (read them from here, never re-type them).

    Keys: ``corpus`` (for :func:`ptutils.data.load_text_corpus`), ``vocab_size``
    (WordPiece), ``block`` (tokens per block between ``[CLS]`` and ``[SEP]``),
    ``val_divisor`` (one block in this many is held out), ``split_seed`` and
    ``init_seed``, ``config`` (``BertConfig`` arguments besides the vocabulary size),
    ``epochs``, ``lr``, ``batch_size`` and ``seed`` (for :func:`pretrain_mlm`).
    """
    from .config import pick

    return {"corpus": pick(full="all", fast="lee"), "vocab_size": pick(full=8000, fast=3000), "block": 62,
            "val_divisor": 10, "split_seed": 0, "init_seed": 0,
            "config": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "intermediate_size": 512, "max_position_embeddings": 128},
            "epochs": pick(full=4, fast=1), "lr": 1e-3, "batch_size": 64, "seed": 0}


def tiny_bert_recipe(settings: dict | None = None) -> dict:
    """The cache recipe of the tiny BERT: its settings, fingerprints of its corpus files and of the code
    that trains it (this module and every ptutils module it imports), library versions."""
    import transformers

    from .cache import code_fingerprint, file_fingerprint
    from .data import gensim_data_path
    from .training import TRAINER_VERSION

    settings = tiny_bert_settings() if settings is None else settings
    files = {"wiki": ["enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"],
             "lee": ["lee_background.cor"]}
    names = files["wiki"] + files["lee"] if settings["corpus"] == "all" else files[settings["corpus"]]
    return {"what": "tiny BERT pre-trained by masked language modelling (chapter 8)", "settings": settings,
            "corpus_files": {n: file_fingerprint(gensim_data_path(n)) for n in names},
            "code": code_fingerprint(__name__),
            "trainer": TRAINER_VERSION, "torch": torch.__version__, "transformers": transformers.__version__}


def save_tiny_bert(model, tokenizer, settings: dict | None = None):
    """Save the pre-trained tiny BERT and its tokenizer into the cache folder of its recipe; return the folder."""
    from .cache import cached_model_dir, finish_model_dir

    recipe = tiny_bert_recipe(settings)
    path = cached_model_dir("tiny-bert-mlm", recipe)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    finish_model_dir(path, recipe)
    return path


def saved_tiny_bert(settings: dict | None = None):
    """The folder holding the tiny BERT made by exactly this recipe (chapter 8 saves it), or ``None``."""
    from .cache import artefact_path, has_model

    recipe = tiny_bert_recipe(settings)
    path = artefact_path("tiny-bert-mlm", recipe, suffix="")
    return path if has_model(path, recipe) else None


# ---- Chapter 8's tiny BERT, trained by one recipe ------------------------------------------
# Chapter 8 runs these steps one by one (to look at each); chapter 12 calls tiny_bert(),
# which loads the model chapter 8 saved or runs the same steps itself, so the model it
# fine-tunes is by construction the one the current recipe trains.
def tiny_bert_data(settings: dict | None = None):
    """The recipe's tokenizer and blocks: ``(tokenizer, train_blocks, val_blocks)``.

    The corpus (:func:`ptutils.data.load_text_corpus`) trains a WordPiece tokenizer, is
    cut into blocks (:func:`make_blocks`), and one block in ``val_divisor`` is held out
    by a permutation seeded with ``split_seed``.

    Shapes:
        train_blocks, val_blocks: ``(N, block + 2)`` token ids.
    """
    from .data import load_text_corpus

    s = tiny_bert_settings() if settings is None else settings
    texts = [" ".join(doc) for doc in load_text_corpus(s["corpus"])]
    tokenizer = train_wordpiece(texts, vocab_size=s["vocab_size"])
    blocks = make_blocks(texts, tokenizer, block=s["block"])
    perm = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(s["split_seed"]))
    n_val = len(blocks) // s["val_divisor"]
    return tokenizer, blocks[perm[n_val:]], blocks[perm[:n_val]]


def new_tiny_bert(tokenizer, settings: dict | None = None):
    """The recipe's untrained ``BertForMaskedLM``, initialised after seeding with ``init_seed``."""
    from transformers import BertConfig, BertForMaskedLM

    from .repro import set_seed

    s = tiny_bert_settings() if settings is None else settings
    set_seed(s["init_seed"])
    return BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **s["config"]))


def pretrain_tiny_bert(model, tokenizer, train_blocks, val_blocks, settings: dict | None = None, *,
                       log: bool = False) -> dict:
    """:func:`pretrain_mlm` with the recipe's ``epochs``, ``lr``, ``batch_size`` and ``seed``.

    The global random state (dropout) is seeded with ``seed`` first, so whatever ran
    between :func:`new_tiny_bert` and this call does not change the trained weights.
    Returns :func:`pretrain_mlm`'s history.
    """
    from .repro import set_seed

    s = tiny_bert_settings() if settings is None else settings
    set_seed(s["seed"])
    return pretrain_mlm(model, train_blocks, val_blocks, tokenizer, epochs=s["epochs"], lr=s["lr"],
                        batch_size=s["batch_size"], seed=s["seed"], log=log)


def tiny_bert(settings: dict | None = None, *, log: bool = False, verbose: bool = True):
    """The folder of the tiny BERT made by the recipe: the one chapter 8 saved, or trained now and saved.

    Training runs the same functions chapter 8 runs (:func:`tiny_bert_data`,
    :func:`new_tiny_bert`, :func:`pretrain_tiny_bert`, :func:`save_tiny_bert`): a few
    minutes on a CPU in full mode.
    """
    from .cache import recipe_key

    path = saved_tiny_bert(settings)
    key = recipe_key(tiny_bert_recipe(settings))
    if path is not None:
        if verbose:
            print(f"cache: loaded tiny-bert-mlm (key {key})")
        return path
    if verbose:
        print(f"cache: tiny-bert-mlm (key {key}) not cached yet (chapter 8 saves it); pre-training it now")
    tokenizer, train_blocks, val_blocks = tiny_bert_data(settings)
    model = new_tiny_bert(tokenizer, settings)
    pretrain_tiny_bert(model, tokenizer, train_blocks, val_blocks, settings, log=log)
    return save_tiny_bert(model, tokenizer, settings)


# --- Next-sentence prediction: BERT's second objective -----------------------------------

def nsp_pairs(docs: list[list[str]], *, segment_words: int, n_pairs: int, generator: torch.Generator,
              negatives: str = "other-document") -> list[tuple[str, str, int]]:
    """Sentence pairs for next-sentence prediction, as BERT builds them.

    Each document is cut into consecutive segments of ``segment_words`` words. A pair
    takes a segment A at random; half the time B is the segment that follows A in its
    document (label 1, IsNext), half the time a segment that does not follow it
    (label 0, NotNext). ``negatives="other-document"`` draws that segment from another
    document, as BERT does; ``"same-document"`` draws it from A's own document, not
    adjacent to A, which removes the topic cue (a control for what NSP really tests).

    Returns:
        ``n_pairs`` tuples ``(text_a, text_b, label)``.
    """
    if negatives not in ("other-document", "same-document"):
        raise ValueError(f"negatives must be 'other-document' or 'same-document', got {negatives!r}")
    if segment_words < 1 or n_pairs < 1:
        raise ValueError("segment_words and n_pairs must be positive")
    segs = [[" ".join(d[i:i + segment_words]) for i in range(0, len(d) - segment_words + 1, segment_words)]
            for d in docs]
    need = 4 if negatives == "same-document" else 2  # a segment, its successor, and a non-adjacent one
    usable = [i for i, s in enumerate(segs) if len(s) >= need]
    if not usable or (negatives == "other-document" and len(segs) < 2):
        raise ValueError(f"documents too short for segments of {segment_words} words")

    def rand(n):
        return int(torch.randint(n, (1,), generator=generator))

    pairs = []
    for _ in range(n_pairs):
        d = usable[rand(len(usable))]
        a = rand(len(segs[d]) - 1)  # A has a successor
        if rand(2):
            pairs.append((segs[d][a], segs[d][a + 1], 1))
        elif negatives == "other-document":
            others = [j for j in range(len(segs)) if j != d and segs[j]]
            if not others:
                raise ValueError(f"no other document has a segment of {segment_words} words")
            o = others[rand(len(others))]
            pairs.append((segs[d][a], segs[o][rand(len(segs[o]))], 0))
        else:
            far = [j for j in range(len(segs[d])) if abs(j - a) > 1]
            pairs.append((segs[d][a], segs[d][far[rand(len(far))]], 0))
    return pairs


def _nsp_batch(tokenizer, pairs, max_length: int) -> dict:
    enc = tokenizer([a for a, _, _ in pairs], [b for _, b, _ in pairs], padding=True, truncation=True,
                    max_length=max_length, return_tensors="pt")  # [CLS] A [SEP] B [SEP], segment ids 0 / 1
    enc["labels"] = torch.tensor([1 - y for _, _, y in pairs])  # Hugging Face: 0 = IsNext, 1 = NotNext
    return enc


def nsp_step(model, batch) -> torch.Tensor:
    """The next-sentence loss of a ``BertForNextSentencePrediction`` on one tokenised batch of pairs."""
    return model(**batch).loss


def train_nsp(model, tokenizer, pairs, *, epochs: int = 2, lr: float = 5e-4, batch_size: int = 32,
              max_length: int = 128, seed: int = 0, log: bool = False,
              progress: str | None = "NSP training") -> dict:
    """Train a ``BertForNextSentencePrediction`` on :func:`nsp_pairs` by :func:`ptutils.training.fit`.

    AdamW (weight decay 0.01 on weight matrices), 10 % linear warm-up then decay.
    Returns fit's history.
    """
    from .training import fit, linear_warmup, shuffled

    if not pairs:
        raise ValueError("no sentence pairs to train on")
    steps = epochs * -(-len(pairs) // batch_size)

    def batches(g):
        for idx in shuffled(len(pairs), batch_size, g):
            yield _nsp_batch(tokenizer, [pairs[i] for i in idx], max_length)

    return fit(model, nsp_step, batches, epochs=epochs, lr=lr, weight_decay=0.01,
               schedule=linear_warmup(steps, int(0.1 * steps)), seed=seed, log_every=1 if log else 0,
               loss_name="train NSP loss", progress=progress)


@torch.no_grad()
def nsp_predictions(model, tokenizer, pairs, *, batch_size: int = 128, max_length: int = 128) -> torch.Tensor:
    """Predicted labels (1 = IsNext, 0 = NotNext) of a next-sentence model for ``pairs``."""
    model.eval()
    where = next(model.parameters()).device
    out = []
    for i in range(0, len(pairs), batch_size):
        batch = _nsp_batch(tokenizer, pairs[i:i + batch_size], max_length)
        batch.pop("labels")
        out.append(1 - model(**batch.to(where)).logits.argmax(-1).cpu())
    return torch.cat(out)


def overlap_baseline(train_pairs, test_pairs) -> dict:
    """NSP without a network: one feature, the TF-IDF cosine similarity of A and B.

    The TF-IDF weights (sublinear term frequency, inverse document frequency over the
    training pairs' segments) make shared rare words count and shared function words
    hardly at all: the feature measures *topic* overlap. A logistic regression on that
    single number is fitted on ``train_pairs`` and scored on ``test_pairs``. High
    accuracy means the task can be solved by topic alone.

    Returns:
        ``{"accuracy", "coef", "pred"}``: test accuracy, the similarity's coefficient, and
        the test predictions (1 = IsNext).
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if not train_pairs or not test_pairs:
        raise ValueError("need training and test pairs")
    vec = TfidfVectorizer(sublinear_tf=True).fit([t for a, b, _ in train_pairs for t in (a, b)])

    def feature(pairs):
        A = vec.transform([a for a, _, _ in pairs])  # rows have unit length: the dot product is the cosine
        B = vec.transform([b for _, b, _ in pairs])
        return np.asarray(A.multiply(B).sum(1)).ravel()[:, None]

    clf = LogisticRegression().fit(feature(train_pairs), [y for _, _, y in train_pairs])
    pred = clf.predict(feature(test_pairs))
    acc = float((pred == np.array([y for _, _, y in test_pairs])).mean())
    return {"accuracy": acc, "coef": float(clf.coef_[0, 0]), "pred": pred}

"""Word2Vec: ptutils' PyTorch skip-gram against gensim, same corpus, same settings, one run.

    .venv/bin/python benchmarks/word2vec.py [--seeds 3] [--epochs 5]

Corpus: gensim's Wikipedia sample + lee_background (ptutils.data.load_text_corpus).
Both use dim=100, window=5, negative=5, min_count=5, sample=1e-3, lr 0.025 -> 1e-4,
skip-gram; gensim with 2 worker threads (the machine has 2 cores), ptutils with
torch's 2 threads. Reports words/second (wall time including vocabulary building),
the speed ratio, and Spearman rho on WordSim-353 and SimLex-999, mean ± std over seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

import ptutils
from ptutils.data import gensim_data_path, load_text_corpus
from ptutils.word2vec import Word2VecConfig, gensim_word2vec, train_word2vec

BENCH = ("wordsim353.tsv", "simlex999.txt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    ptutils.setup_notebook(seed=0)
    corpus = load_text_corpus()
    n_tokens = sum(map(len, corpus))
    print(f"corpus: {len(corpus)} documents, {n_tokens:,} tokens; {args.epochs} epochs, {args.seeds} seeds\n")
    res = {"ptutils": {"wps": [], **{b: [] for b in BENCH}}, "gensim": {"wps": [], **{b: [] for b in BENCH}}}
    for seed in range(args.seeds):
        cfg = Word2VecConfig(epochs=args.epochs, seed=seed)
        wv, hist = train_word2vec(corpus, cfg)
        res["ptutils"]["wps"].append(args.epochs * n_tokens / hist["seconds"])
        gv, secs = gensim_word2vec(corpus, cfg, workers=2)
        res["gensim"]["wps"].append(args.epochs * n_tokens / secs)
        for name, vecs in (("ptutils", wv), ("gensim", gv)):
            for b in BENCH:
                res[name][b].append(vecs.evaluate_word_pairs(gensim_data_path(b))[0])
    oov = [wv.evaluate_word_pairs(gensim_data_path(b))[1] for b in BENCH]

    def ms(x, fmt):
        return f"{format(np.mean(x), fmt)} ± {format(np.std(x, ddof=1) if len(x) > 1 else 0.0, fmt)}"

    print("| implementation | words/s | WordSim-353 ρ | SimLex-999 ρ |")
    print("|---|---:|---:|---:|")
    for name in ("ptutils", "gensim"):
        r = res[name]
        print(f"| {name} | {ms(r['wps'], ',.0f')} | {ms(r[BENCH[0]], '.3f')} | {ms(r[BENCH[1]], '.3f')} |")
    ratio = np.mean(res["ptutils"]["wps"]) / np.mean(res["gensim"]["wps"])
    print(f"\nspeed ratio ptutils / gensim: {ratio:.2f} (target >= 0.5)")
    print(f"out-of-vocabulary pairs: WordSim-353 {oov[0]:.0%}, SimLex-999 {oov[1]:.0%}")
    for b in BENCH:
        g = np.array(res["gensim"][b])
        lo, hi = g.min(), g.max()
        print(f"{b}: ptutils mean {np.mean(res['ptutils'][b]):.3f}, gensim range [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main()

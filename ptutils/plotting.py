"""One figure style for the whole book."""

from __future__ import annotations

import matplotlib as mpl

#: the book's colours, in the order plots use them (colour-blind safe, Okabe-Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set matplotlib defaults: opaque white background (readable in dark mode), clean axes."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "savefig.transparent": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "font.size": 11,
        "legend.frameon": False,
    })


def bar_with_errors(ax, names, means, stds, *, ylabel="", chance=None, fmt="{:.1%}"):
    """Horizontal bars of ``means`` with ``± stds`` error bars, each value written at its bar."""
    y = range(len(names))
    ax.barh(list(y), means, xerr=stds, color=[PALETTE[i % len(PALETTE)] for i in y],
            capsize=4, alpha=0.85)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    for i, (m, s) in enumerate(zip(means, stds, strict=True)):
        ax.text(m + s + 0.01, i, f"{fmt.format(m)} ± {fmt.format(s)}", va="center", fontsize=9)
    if chance is not None:
        ax.axvline(chance, color="grey", ls="--", lw=1)
        ax.text(chance, -0.55, " chance", color="grey", fontsize=9, va="bottom")
    ax.grid(axis="y", visible=False)
    return ax

"""Progress that fits the place: a bar with total, rate and time left where a person watches;
one deterministic line in the website build and under nbval (ptutils.progress)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import nbformat
import pytest
import torch

from ptutils import config, progress, training
from ptutils.progress import Progress


@pytest.fixture
def style(monkeypatch):
    def set_style(s):
        monkeypatch.setattr(config, "PROGRESS", s)
    return set_style


def test_line_style_prints_one_deterministic_line(style, capsys):
    style("line")
    for _ in range(2):
        with Progress(total=5, desc="embedding", unit="batch") as p:
            for _ in range(5):
                p.update()
            p.set_postfix(loss=0.123)
    out = capsys.readouterr()
    assert out.out == "embedding: 5/5 batch\nembedding: 5/5 batch\n"
    assert out.err == ""


def test_line_style_is_silent_when_the_loop_fails(style, capsys):
    style("line")
    with pytest.raises(RuntimeError):
        with Progress(total=5, desc="x") as p:
            p.update()
            raise RuntimeError("boom")
    assert capsys.readouterr().out == ""


def test_bar_style_shows_total_rate_and_time_left(style):
    style("bar")
    buf = io.StringIO()
    with Progress(total=4, desc="word2vec", unit="epoch", file=buf) as p:
        for _ in range(4):
            p.update()
    text = buf.getvalue()
    assert "word2vec" in text and "4/4" in text
    assert "<" in text and ("epoch/s" in text or "s/epoch" in text), text  # time left and rate


def test_bad_totals_and_styles_are_refused():
    with pytest.raises(ValueError, match="total"):
        Progress(total=-1, desc="x", style="line")
    with pytest.raises(ValueError, match="total"):
        Progress(total=2.5, desc="x", style="line")
    with pytest.raises(ValueError, match="style"):
        Progress(total=1, desc="x", style="fancy")


def test_the_switch_refuses_an_unknown_value():
    env = {**os.environ, "PTUTILS_PROGRESS": "sparkles"}
    out = subprocess.run([sys.executable, "-c", "import ptutils.config"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "PTUTILS_PROGRESS='sparkles'" in out.stderr
    env["PTUTILS_PROGRESS"] = "LINE"
    out = subprocess.run([sys.executable, "-c", "import ptutils.config as c; print(c.progress_style())"],
                         env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "line"


def _tiny_fit(**kw):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(12, 3), torch.randint(0, 2, (12,))
    return training.fit(model, training.classification_step, lambda g: zip(x.split(4), y.split(4)),
                        epochs=3, lr=0.1, **kw)


def test_fit_counts_steps_and_says_how_many_epochs_ran(style, capsys):
    style("line")
    _tiny_fit(progress="training")
    assert capsys.readouterr().out == "training: 3/3 epochs, 9 steps\n"
    _tiny_fit(progress="training", on_epoch_end=lambda e, m: {"stop": e == 0})
    assert capsys.readouterr().out == "training: 1/3 epochs, 3 steps\n"
    _tiny_fit()  # no name: silent, as before
    assert capsys.readouterr().out == ""


def test_fit_bar_learns_its_total_after_the_first_epoch(style, capsys):
    style("bar")
    _tiny_fit(progress="training")
    err = capsys.readouterr().err
    assert "9/9" in err and "step" in err, err


def test_the_trainers_bar_follows_the_switch(style):
    style("line")
    assert progress.trainer_arguments() == {"disable_tqdm": True}
    style("bar")
    assert progress.trainer_arguments() == {"disable_tqdm": False}


def _run_cell(code: str, style_: str) -> list:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    os.environ["PTUTILS_PROGRESS"] = style_
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        os.environ.pop("PTUTILS_PROGRESS")
    return nb.cells[0].outputs


CELL = "from ptutils.progress import Progress\nwith Progress(total=3, desc='fine-tuning', unit='epoch') as p:\n" \
       "    for _ in range(3):\n        p.update()\n"


def test_an_executed_notebook_holds_one_line_and_no_bar():
    """What the website build and nbval record: a stdout stream with the final line, nothing else."""
    outputs = _run_cell(CELL, "line")
    assert [o.get("name") for o in outputs] == ["stdout"], outputs
    assert outputs[0]["text"] == "fine-tuning: 3/3 epoch\n"


def test_local_jupyter_gets_a_live_bar():
    """In a kernel with ipywidgets (local Jupyter), the default style draws a widget bar."""
    pytest.importorskip("ipywidgets")
    outputs = _run_cell(CELL, "bar")
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in kinds, outputs

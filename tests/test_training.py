import numpy as np
import pytest
import torch

import ptutils
from ptutils.cnn import DigitCNN
from ptutils.metrics import mean_std, repeated_cv
from ptutils.training import make_optimizer, predict, train_classifier


def _digits(n=400):
    x, y = ptutils.load_digits_images()
    return torch.tensor(x[:n]), torch.tensor(y[:n])


def test_loss_falls_and_model_learns():
    x, y = _digits()
    ptutils.set_seed(0)
    m = DigitCNN()
    seen = []
    hist = train_classifier(m, x[:300], y[:300], epochs=8, lr=3e-3, batch_size=32,
                            on_epoch_end=lambda e, model: seen.append(model.training) or {"e": e})
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert seen == [False] * 8 and hist["e"] == list(range(8)) and hist["epochs_run"] == 8
    acc = (predict(m, x[300:]) == y[300:]).float().mean()
    assert acc > 0.8


def test_same_seed_same_result():
    x, y = _digits(200)
    runs = []
    for _ in range(2):
        ptutils.set_seed(1)
        m = DigitCNN()
        runs.append(train_classifier(m, x, y, epochs=2, seed=1)["loss"])
    assert runs[0] == runs[1]


def test_training_input_errors():
    x, y = _digits(50)
    with pytest.raises(TypeError, match="torch.long"):
        train_classifier(DigitCNN(), x, y.float(), epochs=1)
    with pytest.raises(ValueError, match="50 inputs but 49 labels"):
        train_classifier(DigitCNN(), x, y[:49], epochs=1)
    with pytest.raises(ValueError, match="inputs of different lengths"):
        train_classifier(DigitCNN(), {"a": x, "b": x[:3]}, y, epochs=1)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop", DigitCNN().parameters(), lr=0.1)


def test_sgd_step_is_the_update_rule():
    """One SGD step is exactly theta <- theta - lr * grad."""
    ptutils.set_seed(0)
    lin = torch.nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    before = [p.detach().clone() for p in lin.parameters()]
    loss = torch.nn.functional.cross_entropy(lin(x), y)
    grads = torch.autograd.grad(loss, list(lin.parameters()))
    opt = make_optimizer("sgd", lin.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(lin(x), y).backward()
    opt.step()
    for p, b, g in zip(lin.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1 * g)


def test_repeated_cv_counts_and_checks():
    y = np.array([0, 1] * 20)
    scores = repeated_cv(lambda tr, te, s: y[te], y, n_splits=4, n_repeats=3)
    assert len(scores) == 12 and (scores == 1).all()
    chance = repeated_cv(lambda tr, te, s: np.zeros(len(te), int), y, n_splits=4, n_repeats=1)
    assert np.allclose(chance, 0.5)
    with pytest.raises(ValueError, match="predictions"):
        repeated_cv(lambda tr, te, s: y[:3], y)
    assert mean_std([1.0, 0.0]) == (0.5, pytest.approx(0.7071, abs=1e-4))


def test_classification_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    from ptutils.metrics import classification_metrics
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        m = classification_metrics(y, p)
        assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
        assert m["precision"] == pytest.approx(precision_score(y, p, zero_division=0))
        assert m["recall"] == pytest.approx(recall_score(y, p, zero_division=0))
        assert m["f1"] == pytest.approx(f1_score(y, p, zero_division=0))
    # recall is not precision: 1 TP, 3 FP, 0 FN
    m = classification_metrics([1, 0, 0, 0], [1, 1, 1, 1])
    assert m["precision"] == 0.25 and m["recall"] == 1.0
    with pytest.raises(ValueError, match="equal length"):
        classification_metrics([1, 0], [1])
    with pytest.raises(ValueError, match="no examples"):
        classification_metrics([], [])


def test_confusion_matrix_and_per_class_report_match_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    from ptutils.metrics import confusion_matrix, per_class_report

    rng = np.random.default_rng(0)
    for k in (2, 3, 10):
        y = rng.integers(0, k, 300)
        p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
        assert (confusion_matrix(y, p, k) == sk_cm(y, p, labels=range(k))).all()
        r = per_class_report(y, p, k)
        sp, sr, sf, ss = precision_recall_fscore_support(y, p, labels=range(k), zero_division=0)
        assert np.allclose(r["precision"], sp) and np.allclose(r["recall"], sr) and np.allclose(r["f1"], sf)
        assert (r["support"] == ss).all()
        assert np.isclose(r["macro_f1"], f1_score(y, p, average="macro", zero_division=0))
    # binary layout [[TN, FP], [FN, TP]]
    assert confusion_matrix([1, 1, 0, 0, 1], [1, 0, 1, 0, 1]).tolist() == [[1, 1], [1, 2]]
    # a class never predicted: precision 0, not NaN
    r = per_class_report([0, 1, 2], [0, 0, 0], 3)
    assert r["precision"].tolist() == [1 / 3, 0.0, 0.0] and not np.isnan(r["f1"]).any()


def test_confusion_matrix_rejects_bad_labels():
    from ptutils.metrics import confusion_matrix

    with pytest.raises(ValueError, match="equal length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="integer class labels"):
        confusion_matrix([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)


# ----------------------------------------------------------------------------- read_scalars
def _write_scalars(logdir, series):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir))
    for tag, points in series.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_read_scalars_returns_what_was_written(tmp_path):
    from ptutils.training import read_scalars

    series = {"loss/train": [(1, 2.0), (2, 1.0 / 3.0), (3, 0.125)], "accuracy/val": [(1, 0.5), (2, 0.75), (3, 0.9)]}
    _write_scalars(tmp_path, series)
    got = read_scalars(tmp_path)
    # the event file stores 32-bit floats: compare with the values rounded to float32, exactly
    want = {tag: [(s, float(np.float32(v))) for s, v in pts] for tag, pts in series.items()}
    assert got == want
    assert all(isinstance(s, int) and isinstance(v, float) for pts in got.values() for s, v in pts)
    assert read_scalars(str(tmp_path)) == want  # a str works as well as a Path


def test_read_scalars_keeps_every_point(tmp_path):
    from ptutils.training import read_scalars

    n = 10_050  # more than EventAccumulator's default reservoir of 10,000 scalars per tag
    _write_scalars(tmp_path, {"x": [(i, float(i)) for i in range(n)]})
    got = read_scalars(tmp_path)["x"]
    assert len(got) == n and got[0] == (0, 0.0) and got[-1] == (n - 1, float(n - 1))


def test_read_scalars_hostile_inputs(tmp_path):
    from ptutils.training import read_scalars

    missing = tmp_path / "no-such-run"
    with pytest.raises(FileNotFoundError, match="no-such-run"):
        read_scalars(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no TensorBoard event file .* in .*empty"):
        read_scalars(empty)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("loss 0.1\n")
    with pytest.raises(FileNotFoundError, match="other"):
        read_scalars(other)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "events.out.tfevents.123.host").write_bytes(b"not an event file " * 4)
    with pytest.raises(ValueError, match=r"events\.out\.tfevents\.123\.host: no event could be read"):
        read_scalars(fake)
    nested = tmp_path / "nested"
    _write_scalars(nested / "run1", {"x": [(0, 1.0)]})  # a run in a sub-directory is not this directory's
    with pytest.raises(FileNotFoundError, match="nested"):
        read_scalars(nested)
    a_file = other / "notes.txt"
    with pytest.raises(FileNotFoundError, match="notes.txt"):
        read_scalars(a_file)
    with pytest.raises(TypeError, match="logdir must be a path"):
        read_scalars(3)


@pytest.mark.parametrize("y_true, y_pred, msg", [
    (["pos", "neg"], ["pos", "pos"], "map label names"),
    ([1, 0], [0.9, 0.2], "integer class labels"),
])
def test_metrics_refuse_labels_they_cannot_count(y_true, y_pred, msg):
    from ptutils.metrics import classification_metrics

    with pytest.raises(TypeError, match=msg):
        classification_metrics(y_true, y_pred)
    assert classification_metrics([True, False], [True, True])["recall"] == 1.0  # booleans are 0/1 labels

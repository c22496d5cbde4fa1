"""The progress bar of fit(progress=True) and History.plot."""

import io
import sys

import pytest

from nnfast._history import History
from nnfast._progress import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_one_line_bar_in_a_log_writes_every_tenth_of_the_epochs():
    stream = io.StringIO()
    bar = ProgressBar(100, label="fit", stream=stream, use_tqdm=False)
    for epoch in range(1, 101):
        bar.update(epoch, 1.0 / epoch, val_loss=2.0 / epoch)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("fit [" + "#" * 30 + "] epoch 100/100  loss 0.01")
    assert "val_loss 0.02" in lines[-1]


def test_one_line_bar_on_a_terminal_redraws_one_line_and_ends_it():
    stream = _Terminal()
    bar = ProgressBar(7, stream=stream, use_tqdm=False)
    for epoch in range(1, 8):
        bar.update(epoch, 0.5)
    bar.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 7 and "epoch 7/7" in text


def test_tqdm_is_used_when_installed(capsys):
    pytest.importorskip("tqdm")
    bar = ProgressBar(5, label="train")
    for epoch in range(1, 6):
        bar.update(epoch, 0.25)
    bar.close()
    assert bar._tqdm is not None and bar._tqdm.n == 5
    assert "train" in capsys.readouterr().err


def test_asking_for_tqdm_without_it_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        ProgressBar(3, use_tqdm=True)
    ProgressBar(3).update(1, 0.1)  # None: falls back to the one-line bar


def test_history_plot_draws_both_curves_on_a_log_axis():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = History()
    history.loss = [10.0, 1.0, 0.1]
    history.val_loss = [12.0, 1.5, 0.3]
    ax = history.plot()
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "val_loss"]
    assert list(ax.get_lines()[1].get_ydata()) == [12.0, 1.5, 0.3]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    _, other = plt.subplots()
    assert history.plot(ax=other, log=False) is other and other.get_yscale() == "linear"
    plt.close("all")


def test_history_plot_without_matplotlib_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        History().plot()

"""A progress bar for ``fit(progress=True)``: tqdm when it is installed, else one line.

tqdm is optional and imported only when a bar is made. Without it the bar is one line on
standard error, redrawn in place on a terminal and written every 10 % of the epochs
elsewhere (a log file or a notebook's captured stream stays short).
"""

from __future__ import annotations

import sys

_WIDTH = 30


class ProgressBar:
    """``bar.update(epoch, loss, val_loss=None)`` after each epoch; ``bar.close()`` at the end.

    Parameters
    ----------
    epochs : int
        The number of epochs the bar runs to.
    label : str
        Written before the bar.
    stream : file-like or None
        Where the one-line bar goes (default: ``sys.stderr`` at the time of writing); tqdm
        writes to its own default stream.
    use_tqdm : bool or None
        None: tqdm when it can be imported. False: always the one-line bar.
    """

    def __init__(self, epochs, label="fit", stream=None, use_tqdm=None):
        self.epochs = max(int(epochs), 1)
        self.label = label
        self.stream = stream
        self._tqdm = None
        self._done = 0
        if use_tqdm is not False:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                if use_tqdm:
                    raise ImportError(
                        "progress: tqdm is not installed (pip install tqdm)"
                    ) from None
            else:
                self._tqdm = tqdm(total=self.epochs, desc=label, unit="epoch", leave=True)

    def update(self, epoch, loss, val_loss=None):
        """Show that ``epoch`` (counted from 1) ended with ``loss`` (and ``val_loss``)."""
        text = f"loss {loss:.4g}" + ("" if val_loss is None else f"  val_loss {val_loss:.4g}")
        if self._tqdm is not None:
            self._tqdm.update(epoch - self._done)
            self._tqdm.set_postfix_str(text, refresh=False)
            self._done = epoch
            return
        stream = self.stream if self.stream is not None else sys.stderr
        tty = getattr(stream, "isatty", lambda: False)()
        every = max(1, self.epochs // (_WIDTH if tty else 10))
        if epoch % every and epoch != self.epochs:
            return
        filled = min(_WIDTH, _WIDTH * epoch // self.epochs)
        bar = "#" * filled + "." * (_WIDTH - filled)
        line = f"{self.label} [{bar}] epoch {epoch}/{self.epochs}  {text}"
        stream.write(f"\r{line}" if tty else f"{line}\n")
        stream.flush()
        self._done = epoch

    def close(self):
        """End the bar (a terminal's line is finished with a newline)."""
        if self._tqdm is not None:
            self._tqdm.close()
            return
        stream = self.stream if self.stream is not None else sys.stderr
        if getattr(stream, "isatty", lambda: False)() and self._done:
            stream.write("\n")
            stream.flush()

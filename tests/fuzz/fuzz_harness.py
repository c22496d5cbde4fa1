"""What every fuzz case shares: its budget and settings, the progress record that
``test_fuzz.py`` reads when the child process dies, and the checks of a refused call.

Budget: ``fuzz(n)`` gives a case ``n`` examples (about 4,000 over all cases);
``NNFAST_FUZZ_LONG=1`` multiplies every budget by 20. Derandomized, no example database:
the same run draws the same examples every time. (Hypothesis also draws literals found in
the nnfast modules imported so far, so a case run alone, or after an edit of nnfast, can
draw other examples than inside ``test_fuzz.py``.)

Progress record: when ``NNFAST_FUZZ_PROGRESS`` names a file (``test_fuzz.py`` sets it for
its child), each example writes there, before it runs, its case, its number, the seed
hypothesis derandomized the case with and its arguments, then every value drawn from
``st.data()`` as it is drawn, then ``finished``. A crash inside compiled code leaves the
example it happened in, which the parent reports. Arrays are written as their dtype,
shape, layout and raw bytes (``repr`` of a NumPy array costs a millisecond, which over
every draw would slow the fuzzing by a fifth).
"""

import functools
import itertools
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")
SCALE = 20 if LONG else 1
PROGRESS = os.environ.get("NNFAST_FUZZ_PROGRESS")
# The last line of the progress record once an example has returned or raised.
FINISHED = "finished"
# Where the record of the current example ends: each example overwrites the file from its
# start (truncating a file costs milliseconds here), so what follows is an older record.
END = "\n<end of record>\n"
# Most characters written per argument or drawn value.
DESCRIPTION_LIMIT = 2000


def fuzz(n):
    """The settings of a fuzz case with a budget of ``n`` examples (20 n in the long mode)."""
    budget = settings(
        max_examples=n * SCALE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )

    def apply(test):
        return budget(_recorded(test) if PROGRESS else test)

    return apply


def read_record(path):
    """The progress record of the example the child was in or had just ended."""
    with open(path, encoding="utf-8", errors="replace") as record:
        return record.read().split(END, 1)[0]


class _Record:
    """The progress file, kept open; ``start`` begins an example's record, ``add`` extends
    it. Both write through to the kernel, so the text survives a crash of the process."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.end = 0

    def start(self, text):
        self.end = 0
        self.add(text)

    def add(self, text):
        data = text.encode("utf-8", errors="replace")
        os.pwrite(self.fd, data + END.encode(), self.end)
        self.end += len(data)


_record = None


def _recorded(test):
    """``test`` writing each of its examples to the progress record.

    functools.wraps matters: hypothesis derives a derandomized case's seed from the
    source and signature behind ``__wrapped__``, so the examples are the same as without
    the record.
    """
    numbers = itertools.count(1)
    seed = _derandomized_seed(test)

    @functools.wraps(test)
    def run_one_example(*args, **kwargs):
        global _record
        if _record is None:
            _record = _Record(PROGRESS)
        case = os.environ.get("PYTEST_CURRENT_TEST", test.__qualname__).rsplit(" (", 1)[0]
        lines = [f"case: {case}", f"example: {next(numbers)}", f"seed: {seed}"]
        for name, value in kwargs.items():
            if isinstance(value, st.DataObject):
                value.draw = _recording_draws(value.draw)
            else:
                lines.append(f"{name} = {_describe(value)}")
        _record.start("\n".join(lines) + "\n")
        try:
            return test(*args, **kwargs)
        finally:
            _record.add(FINISHED + "\n")

    return run_one_example


def _recording_draws(draw):
    """``data.draw`` adding each drawn value to the progress record."""
    count = itertools.count(1)

    def recorded_draw(strategy, label=None):
        value = draw(strategy, label)
        _record.add(f"draw {next(count)} = {_describe(value)}\n")
        return value

    return recorded_draw


def _describe(value):
    """``repr(value)``, cut at DESCRIPTION_LIMIT, with arrays (also inside tuples and
    lists) as dtype, shape, layout and the hex of their bytes in C order."""
    text = _description(value)
    return text if len(text) <= DESCRIPTION_LIMIT else text[:DESCRIPTION_LIMIT] + " ..."


def _description(value):
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        flags = value.flags
        layout = "".join(
            letter
            for letter, on in (
                ("C", flags.c_contiguous),
                ("F", flags.f_contiguous),
                ("W", flags.writeable),
                ("A", flags.aligned),
            )
            if on
        )
        return (
            f"ndarray(dtype={value.dtype.str!r}, shape={value.shape}, "
            f"strides={value.strides}, flags={layout!r}, bytes={value.tobytes().hex()!r})"
        )
    if isinstance(value, (tuple, list)) and len(value) <= 16:
        items = ", ".join(_description(item) for item in value)
        return f"({items},)" if isinstance(value, tuple) else f"[{items}]"
    return repr(value)


def _derandomized_seed(test):
    """The seed of hypothesis's derandomized run of ``test``, or None if this version of
    hypothesis computes it differently. ``@seed(...)`` with it keeps the same run drawing
    the same examples after the test's body has changed."""
    try:
        from hypothesis.internal.reflection import function_digest
    except ImportError:
        return None
    return int.from_bytes(function_digest(test), "big")


def assert_names(err, *names):
    message = str(err)
    assert any(name in message for name in names), f"{names} not named in {message!r}"


def snapshot(net):
    return net.params.tobytes()

"""Training releases the GIL for whole epochs: networks train in parallel threads, with the
same results as one after the other. (The speed-up itself is measured by
``python -m nnfast bench``, not asserted here: tests never fail on timing.)"""

import threading

import numpy as np

import nnfast


def _data(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 16))
    y = np.tanh(X @ rng.standard_normal((16, 3)))
    return X, y


def test_networks_trained_in_threads_equal_serial_training():
    X, y = _data()
    settings = dict(optimizer="adam", lr=1e-3, batch_size=32, epochs=3)
    serial = [nnfast.MLP([16, 64, 64, 3], seed=s) for s in (1, 2)]
    for net in serial:
        net.fit(X, y, **settings)
    threaded = [nnfast.MLP([16, 64, 64, 3], seed=s) for s in (1, 2)]
    threads = [threading.Thread(target=net.fit, args=(X, y), kwargs=settings) for net in threaded]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a.params, b.params)


def test_python_threads_run_during_an_epoch():
    """One long epoch (whole-set batches of a wide network): if the GIL were held, the
    counting thread could not advance between the epoch's start and its end."""
    X, y = _data(n=20000)
    net = nnfast.MLP([16, 256, 256, 3], seed=0)
    inside = threading.Event()
    counts = []

    def count():
        inside.wait()
        n = 0
        while inside.is_set():
            n += 1
        counts.append(n)

    counter = threading.Thread(target=count)
    counter.start()

    def callback(epoch, loss):
        # Runs with the GIL between epochs: the counter starts before epoch 2, which then
        # runs without the GIL, and stops when epoch 2 has ended.
        if epoch == 1:
            inside.set()
        else:
            inside.clear()
            return False

    net.fit(X, y, optimizer="sgd", lr=1e-4, batch_size=None, epochs=5, callback=callback)
    inside.clear()
    counter.join()
    assert counts and counts[0] > 1000

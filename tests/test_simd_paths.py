"""The choice of SIMD code path (nnfast/src/cpu.h): one setter, one environment variable, one
getter for every kernel family, and the CPU detection they rest on.

- ``NNFAST_SIMD`` picks the path of every family at import (child processes); a bad value is
  a ValueError naming the variable and the value.
- ``nnfast.kernels.set_simd_path(name)`` changes it at run time, returns the previous setting,
  and refuses an unknown name with a ValueError naming it; ``simd_paths()`` reports each
  family's path.
- With no limit, each family runs the widest path whose features /proc/cpuinfo lists, and
  ``_kernels.cpu_info()`` reports the vendor, family, model and features /proc/cpuinfo shows.

The kernels on each path are tested in test_gemm_paths.py, test_fastmath.py and
test_kernels.py.
"""

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SIMD_PATHS

import nnfast
from nnfast import _kernel_entry, _kernels, kernels

FAMILIES = ("products", "fast_math", "elementwise")
# The features each family's code for a path is compiled for (cpu.h's target attributes).
NEEDS = {
    "products": {"avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx2", "fma"}},
    "fast_math": {
        "avx2": {"avx2", "fma"},
        "avx512": {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx2", "fma"},
    },
    "elementwise": {"avx2": {"avx2"}, "avx512": {"avx512f"}},
}
KNOWN_FEATURES = ("sse2", "avx", "fma", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl")
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _cpuinfo():
    """The first processor's fields of /proc/cpuinfo, or None."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _best_path(family, flags):
    for name in ("avx512", "avx2"):
        if NEEDS[family][name] <= flags:
            return name
    return "baseline"


def _child(code, **environment):
    """Run ``code`` in a fresh interpreter that imports this nnfast with ``environment``."""
    env = dict(os.environ, PYTHONPATH=str(Path(nnfast.__file__).resolve().parents[1]))
    env.pop("NNFAST_SIMD", None)
    env.pop("NNFAST_AVX512_UNITS", None)
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def restore_path():
    previous = kernels.set_simd_path("best")
    kernels.set_simd_path(previous)
    yield
    kernels.set_simd_path(previous)


@pytest.mark.parametrize("name", SIMD_PATHS + ("best",))
def test_the_environment_variable_picks_the_path_of_every_family(name):
    with_limit = _child(
        "import json; from nnfast import kernels; print(json.dumps(kernels.simd_paths()))",
        NNFAST_SIMD=name,
    )
    assert with_limit.returncode == 0, with_limit.stderr
    got = json.loads(with_limit.stdout)
    assert set(got) == set(FAMILIES)
    # The variable sets the same limit as the setter does in this process.
    previous = kernels.set_simd_path(name)
    try:
        assert got == kernels.simd_paths()
    finally:
        kernels.set_simd_path(previous)
    if name != "best":
        assert all(SIMD_PATHS.index(path) <= SIMD_PATHS.index(name) for path in got.values())


def test_without_the_variable_every_family_runs_its_widest_path():
    result = _child(
        "import json; from nnfast import kernels; print(json.dumps(kernels.simd_paths()))"
    )
    assert result.returncode == 0, result.stderr
    previous = kernels.set_simd_path("best")
    try:
        assert json.loads(result.stdout) == kernels.simd_paths()
    finally:
        kernels.set_simd_path(previous)


def test_a_bad_environment_value_is_a_value_error_naming_it():
    result = _child("import nnfast", NNFAST_SIMD="avx1024")
    assert result.returncode != 0
    assert (
        "ValueError: NNFAST_SIMD: expected one of ('best', 'avx512', 'avx2', 'baseline'), "
        "got 'avx1024'"
    ) in result.stderr


@pytest.mark.parametrize("bad", ["avx1024", "AVX2", "", "sse2", 2, None, b"avx2"])
def test_an_unknown_path_is_a_value_error_naming_it(bad, restore_path):
    before = kernels.simd_paths()
    message = f"name: expected one of ('best', 'avx512', 'avx2', 'baseline'), got {bad!r}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        kernels.set_simd_path(bad)
    assert kernels.simd_paths() == before


def test_the_compiled_setter_refuses_unknown_names_too(restore_path):
    with pytest.raises(ValueError, match="name: .* got 'avx1024'"):
        _kernels.set_simd_path("avx1024")
    with pytest.raises(TypeError):
        _kernels.set_simd_path(1)


def test_the_setter_returns_the_previous_setting_and_the_getter_follows(restore_path):
    kernels.set_simd_path("best")
    widest = kernels.simd_paths()
    assert kernels.set_simd_path("baseline") == "best"
    assert kernels.simd_paths() == dict.fromkeys(FAMILIES, "baseline")
    assert kernels.set_simd_path("avx2") == "baseline"
    for family, path in kernels.simd_paths().items():
        # avx2 where the family ran avx2 or wider, what it ran otherwise
        assert path == ("avx2" if widest[family] != "baseline" else "baseline"), family
    assert kernels.set_simd_path("avx512") == "avx2"
    assert kernels.simd_paths() == widest  # avx512 is the widest path: no limit
    assert kernels.set_simd_path("best") == "avx512"
    assert kernels.simd_paths() == widest


def test_each_family_runs_the_widest_path_its_cpu_features_allow(restore_path):
    info = _cpuinfo()
    if info is None or "flags" not in info:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    flags = set(info["flags"].split())
    kernels.set_simd_path("best")
    expected = {family: _best_path(family, flags) if X86 else "baseline" for family in FAMILIES}
    assert kernels.simd_paths() == expected


def test_cpu_info_matches_proc_cpuinfo():
    cpu = _kernels.cpu_info()
    assert set(cpu) == {
        "vendor",
        "brand",
        "family",
        "model",
        "stepping",
        "features",
        "avx512_unit_bits",
    }
    assert set(cpu["features"]) <= set(KNOWN_FEATURES)
    info = _cpuinfo()
    if not X86 or info is None or "vendor_id" not in info:
        pytest.skip("not an x86 CPU with /proc/cpuinfo")
    assert cpu["vendor"] == info["vendor_id"]
    assert cpu["family"] == int(info["cpu family"])
    assert cpu["model"] == int(info["model"])
    assert cpu["stepping"] == int(info["stepping"])
    assert cpu["brand"] == info["model name"]
    flags = set(info["flags"].split())
    assert set(cpu["features"]) == {f for f in KNOWN_FEATURES if f in flags}
    # AVX-512 on 256-bit units: AMD family 25 (Zen 4); full width elsewhere.
    zen4 = info["vendor_id"] == "AuthenticAMD" and int(info["cpu family"]) == 25
    want = 0 if "avx512f" not in flags else 256 if zen4 else 512
    assert cpu["avx512_unit_bits"] == want


@pytest.fixture
def restore_units(restore_path):
    previous = kernels.set_avx512_units(None)
    kernels.set_avx512_units(previous)
    yield
    kernels.set_avx512_units(previous)


def _runs_avx512_products():
    kernels.set_simd_path("best")
    return kernels.simd_paths()["products"] == "avx512"


def test_the_avx512_units_setter_returns_the_previous_setting_and_the_getter_follows(
    restore_units,
):
    detected = _kernels.cpu_info()["avx512_unit_bits"]
    assert kernels.set_avx512_units(None) in (None, 256, 512)
    if not _runs_avx512_products():
        assert kernels.avx512_units() is None
        pytest.skip("the products do not run AVX-512 on this CPU")
    assert kernels.avx512_units() == detected
    assert kernels.set_avx512_units(256) is None
    assert kernels.avx512_units() == 256
    assert kernels.set_avx512_units(np.int64(512)) == 256
    assert kernels.avx512_units() == 512
    kernels.set_simd_path("avx2")  # no AVX-512 products: no width to plan for
    assert kernels.avx512_units() is None
    kernels.set_simd_path("best")
    assert kernels.avx512_units() == 512  # the setting outlives the path limit
    assert kernels.set_avx512_units(None) == 512
    assert kernels.avx512_units() == detected


@pytest.mark.parametrize("bad", [0, 128, 1024, -256, 256.0, "256", True, [256]])
def test_an_unknown_avx512_width_is_a_value_error_naming_it(bad, restore_units):
    kernels.set_avx512_units(512)
    message = f"bits: expected None, 256 or 512, got {bad!r}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        kernels.set_avx512_units(bad)
    with pytest.raises(ValueError, match="^bits: expected None, 256 or 512"):
        _kernels.set_avx512_units(bad)
    assert kernels.set_avx512_units(None) == 512  # unchanged by the refusals


@pytest.mark.parametrize("units", ["256", "512"])
def test_the_avx512_units_variable_plans_the_products(units):
    result = _child(
        "from nnfast import kernels; print(kernels.avx512_units())", NNFAST_AVX512_UNITS=units
    )
    assert result.returncode == 0, result.stderr
    kernels_run_avx512 = _kernels.cpu_info()["avx512_unit_bits"] != 0
    assert result.stdout.strip() == (units if kernels_run_avx512 else "None")


def test_a_bad_avx512_units_variable_is_a_value_error_naming_it():
    result = _child("import nnfast", NNFAST_AVX512_UNITS="1024")
    assert result.returncode != 0
    assert "ValueError: NNFAST_AVX512_UNITS: expected 256 or 512, got '1024'" in result.stderr


def test_the_bench_sets_the_path_in_this_process(monkeypatch, restore_path):
    """``python -m nnfast bench --path`` calls the setter instead of re-launching itself."""
    from nnfast import bench, cli

    seen = {}

    def fake_run(args):
        seen.update(kernels.simd_paths())
        return 0

    def no_relaunch(*args, **kwargs):
        raise AssertionError("the bench started another process")

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(subprocess, "run", no_relaunch)
    kernels.set_simd_path("best")
    assert cli.main(["bench", "--quick", "--path", "baseline"]) == 0
    assert seen == dict.fromkeys(FAMILIES, "baseline")


def test_the_bench_prints_the_cpu_and_each_familys_path(capsys, restore_path):
    from nnfast import bench

    kernels.set_simd_path("avx2")
    bench.print_code_paths()
    text = capsys.readouterr().out
    cpu = _kernels.cpu_info()
    assert f"family {cpu['family']}, model {cpu['model']}" in text
    for family, path in kernels.simd_paths().items():
        assert f"{family} {path}" in text


def test_the_bench_sets_and_prints_the_avx512_units(monkeypatch, capsys, restore_units):
    from nnfast import bench, cli

    seen = []
    monkeypatch.setattr(bench, "run", lambda args: seen.append(kernels.avx512_units()) or 0)
    assert cli.main(["bench", "--quick", "--avx512-units", "512"]) == 0
    if not _runs_avx512_products():
        assert seen == [None]
        pytest.skip("the products do not run AVX-512 on this CPU")
    assert seen == [512]
    for units, how in (
        (256, "run kernels in 256-bit vectors"),
        (512, "every row in 512-bit vectors"),
    ):
        kernels.set_avx512_units(units)
        bench.print_code_paths()
        text = capsys.readouterr().out
        assert f"AVX-512 products planned for {units}-bit units: " in text and how in text


def test_the_setter_switches_the_code_that_runs(restore_path):
    """The baseline path has no FMA: its products differ from the AVX2 path's (explicit FMA
    instructions) in the last bits, so equal products would mean the setter changed nothing.
    The fast math's FMAs come from contraction, which an unoptimised (-O0) build does not
    do: there its paths may agree, so it is only compared to rounding."""
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((16, 300)), rng.standard_normal((300, 24))
    x = rng.uniform(-5, 5, 4096)
    results = {}
    for name in ("baseline", "avx2"):
        kernels.set_simd_path(name)
        paths = kernels.simd_paths()
        if paths["products"] != name or paths["fast_math"] != name:
            pytest.skip(f"CPU lacks {name}")
        tanh = np.empty_like(x)
        _kernel_entry.fastmath_into("tanh", tanh, x)
        results[name] = (kernels.matmul(A, B), tanh)
    (product_baseline, tanh_baseline), (product_avx2, tanh_avx2) = results.values()
    assert not np.array_equal(product_baseline, product_avx2)
    np.testing.assert_allclose(product_baseline, product_avx2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tanh_baseline, tanh_avx2, rtol=1e-15, atol=0)

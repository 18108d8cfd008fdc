"""ULP errors of the vectorised math: `python -m hybrid_gp.bench.ulp [--points N]`.

Compares kernels/vecmath.py with numpy in x87 extended precision (64-bit mantissa)
on wide point sets per function (docs/kernels.md lists them and the results). Error
is |ours - ref| / spacing(ref rounded to double). Needs a long double wider than
double (x86-64 Linux has one); elsewhere it says so and stops.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..kernels import vecmath as vm
from ..kernels.opcodes import EPS

L = np.longdouble


def _ulp(ours: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r64 = ref.astype(np.float64)
    fin = np.isfinite(r64) & np.isfinite(ours)
    err = np.abs(ours[fin].astype(L) - ref[fin]) / np.spacing(np.abs(r64[fin])).astype(L)
    return err.astype(np.float64), fin


def point_sets(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Inputs per function: bulk ranges, tiny and huge magnitudes, hard spots."""
    def uni(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n)

    def logu(lo: float, hi: float) -> np.ndarray:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n)) * rng.choice([-1, 1], n)

    near_pole = np.pi / 2 * rng.integers(-2**19, 2**19, n) + logu(1e-12, 1e-6)
    trig = np.concatenate([uni(-10, 10), logu(1e-300, 2.0**20), near_pole])
    return {"exp": np.concatenate([uni(-745.2, 709.8), uni(-1, 1), logu(1e-300, 1)]),
            "log": np.concatenate([logu(1e-10, 1e308), uni(0.5, 2), 1 + logu(1e-16, 1e-3)]),
            "sin": trig, "cos": trig,
            "tanh": np.concatenate([uni(-25, 25), logu(1e-300, 1), uni(-1, 1)])}


def _reference(name: str, x: np.ndarray) -> np.ndarray:
    xl = x.astype(L)
    if name == "log":
        return np.where(np.abs(xl) <= EPS, L(0), np.log(np.abs(xl)))
    return getattr(np, name)(xl)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_gp.bench.ulp",
                                description="ULP errors of hybrid_gp's vectorised math")
    p.add_argument("--points", type=int, default=1_000_000,
                   help="points per range (three ranges per function; default 1000000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.points < 1:
        p.error(f"--points must be >= 1, got {args.points}")
    if np.finfo(L).nmant < 63:
        print("numpy's long double is no wider than double here: no reference to "
              "measure against (tests/test_vecmath.py falls back to mpmath)")
        return 1
    rng = np.random.default_rng(args.seed)
    with np.errstate(all="ignore"):
        for name, x in point_sets(rng, args.points).items():
            ours = x.copy()
            getattr(vm, "v" + name)(ours, len(ours))
            err, fin = _ulp(ours, _reference(name, x))
            worst = x[fin][np.argmax(err)]
            print(f"{name:5s} {len(x):>9d} points  max {err.max():.3f} ULP  "
                  f"mean {err.mean():.3f}  worst at {worst!r}")
        n = args.points
        a = np.concatenate([np.exp(rng.uniform(-690, 690, n)), rng.uniform(0.25, 4, n),
                            1 + rng.normal(0, 1e-3, n), rng.uniform(1e-320, 1e-310, n)])
        y = rng.uniform(-709, 709, len(a))
        b = y / np.log(np.abs(a))
        ours = b.copy()
        vm.vpow(a, ours, len(ours))
        err, fin = _ulp(ours, np.power(np.abs(a.astype(L)), b.astype(L)))
        size = np.abs(y[fin])
        for lo, hi in [(0, 1), (1, 10), (10, 100), (100, 710)]:
            m = (size >= lo) & (size < hi)
            if m.any():
                print(f"pow   |b log|a|| in [{lo}, {hi}): {int(m.sum()):>8d} points  "
                      f"max {err[m].max():.3f} ULP  mean {err[m].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

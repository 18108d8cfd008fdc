"""Least-squares linear scaling of every program of a batch: y ≈ a + b·f(x).

Keijzer's scaling (2003): b = cov(f, y) / var(f), a = mean(y) - b·mean(f), and b = 0
when var(f) is nil next to mean(f)² (a constant program gets a = mean(y)). One pass over
row blocks through the interpreter's run_block; block moments, taken about the first
row's values so that large means do not cancel the variances, are merged with Chan's
update. The MSE after scaling comes from the moments, cyy - b·cfy; when that is below
1e-6 of var(y) (a near-perfect fit, where the difference loses its digits) a second
pass sums the residuals exactly. A program with any non-finite output gets a = b = NaN
and MSE inf. Numpy twin: `scaling_reference`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .interpreter import run_block

_JIT = dict(cache=True, error_model="numpy", nogil=True)

#: var(f) <= FLAT * mean(f)² counts as a constant output (b = 0): rounding noise only.
FLAT = 1e-20
#: below this share of var(y) the MSE is recomputed from residuals (second pass).
EXACT_BELOW = 1e-6


@njit(**_JIT)
def _scale_program(p, batch, XT, y, out, block, depth, ext):
    codes, code_off, consts, const_off, arity = batch
    start, end, c_end = code_off[p], code_off[p + 1], const_off[p + 1]
    stack = np.empty((depth, block), dtype=XT.dtype)
    n_rows = XT.shape[1]
    n = 0.0
    mf, my, cff, cfy, cyy = 0.0, 0.0, 0.0, 0.0, 0.0
    kf, ky = 0.0, 0.0
    for r0 in range(0, n_rows, block):
        nb = min(block, n_rows - r0)
        run_block(codes, start, end, consts, c_end, arity, XT, r0, nb, stack, ext)
        top = stack[0]
        if r0 == 0:  # moments are taken about the first row: f - kf keeps its digits
            kf, ky = np.float64(top[0]), y[0]
        sf, sy = 0.0, 0.0
        for r in range(nb):
            sf += np.float64(top[r]) - kf
            sy += y[r0 + r] - ky
        if not np.isfinite(sf):
            out[p, 0], out[p, 1], out[p, 2] = np.nan, np.nan, np.inf
            return
        sf, sy = sf / nb, sy / nb
        bff, bfy, byy = 0.0, 0.0, 0.0
        for r in range(nb):
            df = (np.float64(top[r]) - kf) - sf
            dy = (y[r0 + r] - ky) - sy
            bff += df * df
            bfy += df * dy
            byy += dy * dy
        if not np.isfinite(bff):
            out[p, 0], out[p, 1], out[p, 2] = np.nan, np.nan, np.inf
            return
        bf, by = sf, sy
        tot = n + nb
        ef, ey, w = bf - mf, by - my, n * nb / tot
        cff += bff + ef * ef * w
        cfy += bfy + ef * ey * w
        cyy += byy + ey * ey * w
        mf += ef * nb / tot
        my += ey * nb / tot
        n = tot
    if not np.isfinite(cff) or not np.isfinite(cfy):
        out[p, 0], out[p, 1], out[p, 2] = np.nan, np.nan, np.inf
        return
    mf, my = mf + kf, my + ky
    b = 0.0 if cff <= FLAT * mf * mf * n else cfy / cff
    a = my - b * mf
    sse = max(cyy - b * cfy, 0.0)
    if sse <= EXACT_BELOW * cyy:
        sse = 0.0
        for r0 in range(0, n_rows, block):
            nb = min(block, n_rows - r0)
            run_block(codes, start, end, consts, c_end, arity, XT, r0, nb, stack, ext)
            top = stack[0]
            for r in range(nb):
                e = (a + b * np.float64(top[r])) - y[r0 + r]
                sse += e * e
    out[p, 0], out[p, 1], out[p, 2] = a, b, sse / n


@njit(**_JIT)
def scale_batch_serial(batch, XT, y, out, block, depth, ext):
    """out[p] = (a, b, MSE of a + b·f_p(x) against y) for every program p of the batch."""
    for p in range(out.shape[0]):
        _scale_program(p, batch, XT, y, out, block, depth, ext)


@njit(parallel=True, **_JIT)
def scale_batch_parallel(batch, XT, y, out, block, depth, ext):
    for p in prange(out.shape[0]):
        _scale_program(p, batch, XT, y, out, block, depth, ext)


# ---------------------------------------------------------------------- numpy twin


def scaling_reference(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Twin of `scale_batch_serial` from the outputs (n_programs, n_rows): rows (a, b,
    MSE), the MSE always from the residuals."""
    out = np.empty((outputs.shape[0], 3))
    with np.errstate(all="ignore"):
        for p, f in enumerate(outputs.astype(np.float64)):
            if not np.all(np.isfinite(f)):
                out[p] = np.nan, np.nan, np.inf
                continue
            mf, my = f.mean(), y.mean()
            cff = np.sum((f - mf) ** 2)
            if not np.isfinite(cff):
                out[p] = np.nan, np.nan, np.inf
                continue
            b = 0.0 if cff <= FLAT * mf * mf * len(f) else np.sum((f - mf) * (y - my)) / cff
            a = my - b * mf
            out[p] = a, b, np.mean(((a + b * f) - y) ** 2)
    return out

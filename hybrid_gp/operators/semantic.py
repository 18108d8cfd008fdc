"""Semantic backpropagation: the random desired operator (RDO).

Pawlak, Wieloch and Krawiec, "Semantic backpropagation for designing search operators
in genetic programming" (IEEE TEVC 2015). For a parent, pick a node at random; carry
the target outputs y from the root down to that node by inverting every operator on
the path with the actual outputs of its other arguments (if the root is x + s, its
first argument should output y - s; if that is sin(u), u should output arcsin(y - s)
on the branch nearest u's present output; ...). Then put at the node the library
subtree (or, in grammars with constants, the constant) whose outputs come closest to
the desired ones on the rows where they are defined; in grammars without constants,
also c1 * s1 + c2 * s2 over library subtrees with small rational coefficients, built
from variables alone ("linear RDO": x1**2/2 as x1 * x1 * (x0 / (x0 + x0))).

Classic operators change a tree blindly; this one changes a subtree towards what the
rest of the tree needs (on Nguyen-4 it supplies the missing polynomial terms; see
docs/search.md for what it was measured to do). The library is the distinct subtrees
of the population's best programs; their outputs and the parents' come from one
kernel call per generation. Single-type grammars only (the inversions are for float
operators).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..compiler import CompiledBatch, compile_batch
from ..constraints import is_valid
from ..evaluation import evaluate_features
from ..grammar import Grammar
from ..kernels.opcodes import EPS
from ..program import CONST, Program, replace_subtree, var_code

TWO_PI = 2.0 * math.pi
_TRIES = 4  # library candidates tried per child when the best breaks a constraint
_FIRSTS = 4  # first terms tried (per ranking) for a two-term linear RDO replacement


def _rationals() -> tuple[np.ndarray, list[Fraction]]:
    pos = sorted({Fraction(p, q) for p in range(1, 5) for q in range(1, 5)})
    fr = [-f for f in reversed(pos)] + pos
    return np.array([float(f) for f in fr]), fr


_COEF_VALUES, _COEF_FRACTIONS = _rationals()  # the coefficients linear RDO may use


_COEF_MIDS = (_COEF_VALUES[:-1] + _COEF_VALUES[1:]) / 2


def _round_coefs(c: np.ndarray) -> np.ndarray:
    """Indices into _COEF_VALUES of the allowed coefficients nearest c (NaN: the last;
    callers drop the rows where c is not finite)."""
    return np.searchsorted(_COEF_MIDS, c)


@dataclass(frozen=True)
class Library:
    """Distinct subtrees (where they come from) with their outputs on the rows the
    operator works on; a subtree becomes a Program only when it is used."""

    sources: list[tuple[Program, int]]  # (program, node)
    outputs: np.ndarray  # (m, rows)
    sizes: np.ndarray  # nodes
    depths: np.ndarray  # edges
    norms: np.ndarray | None = None  # squared norms of `outputs` over all rows
    unit: int | None = None  # variable code that builds constants (v / v, ...), if any
    basis: np.ndarray | None = None  # positions of the monomials (see monomials())
    gram: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # rows of outputs @ outputs.T (all rows) linear RDO has needed so far

    def subtree(self, j: int) -> Program:
        program, node = self.sources[j]
        return program.subtree(node)


def applies_to(grammar: Grammar) -> bool:
    """Whether RDO can run on this grammar: one type everywhere."""
    return len(grammar.types) == 1


def subtree_outputs(programs: Sequence[Program], XT: np.ndarray) -> list[np.ndarray]:
    """For each program, the outputs of the subtree at every node, (size, rows): one
    kernel call over slices of the programs' compiled codes."""
    if not programs:
        return []
    batch = compile_batch(programs)
    starts, stops, c_starts, c_stops = [], [], [], []
    for k, p in enumerate(programs):
        ends = np.asarray(p.layout[0], dtype=np.int64)
        before = np.concatenate(([0], np.cumsum(np.asarray(p.codes) == CONST)))
        nodes = np.arange(p.size)
        starts.append(batch.code_offsets[k] + nodes)
        stops.append(batch.code_offsets[k] + ends)
        c_starts.append(batch.const_offsets[k] + before[nodes])
        c_stops.append(batch.const_offsets[k] + before[ends])
    codes, code_off = _slices(batch.codes, np.concatenate(starts), np.concatenate(stops))
    consts, const_off = _slices(batch.consts, np.concatenate(c_starts), np.concatenate(c_stops))
    subtrees = CompiledBatch(codes, code_off, consts, const_off, batch.n_features, batch.depth)
    with np.errstate(all="ignore"):
        out = evaluate_features(subtrees, XT)
    return np.split(out, np.cumsum([p.size for p in programs])[:-1])


def _slices(values: np.ndarray, starts: np.ndarray, stops: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """values[starts[j]:stops[j]] for every j, concatenated, with their offsets."""
    lengths = stops - starts
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    idx = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    return values[idx], offsets


def build_library(programs: Sequence[Program], outputs: Sequence[np.ndarray],
                  XT: np.ndarray | None = None) -> Library:
    """The distinct subtrees (by outputs; the smallest of equals) of `programs`, whose
    subtree outputs are `outputs` (from subtree_outputs). With XT (and a grammar with
    add, sub, mul and div but no constants: linear RDO's), the monomials of every
    variable up to degree 4 and the products of two variables join the library."""
    sources = [(p, i) for p in programs for i in range(p.size)]
    if not sources:
        return Library([], np.empty((0, 0)), np.empty(0, np.int64), np.empty(0, np.int64))
    outputs = list(outputs)
    n_own = len(sources)
    if XT is not None and not programs[0].grammar.constants.enabled:  # for linear RDO
        extra, extra_out = monomials(programs[0].grammar, XT)
        sources += [(p, 0) for p in extra]
        outputs += extra_out
    out = np.concatenate(outputs)
    sizes = np.array([p.layout[0][i] - i for p, i in sources], dtype=np.int64)
    finite = np.flatnonzero(np.all(np.isfinite(out), axis=1))
    order = finite[np.argsort(sizes[finite], kind="stable")]
    with np.errstate(all="ignore"):
        keys = np.round(out[order], 12)
    seen: dict[bytes, int] = {}
    for j, key in zip(order.tolist(), keys, strict=True):
        seen.setdefault(key.tobytes(), j)  # the first in size order: the smallest
    keep = np.sort(np.fromiter(seen.values(), dtype=np.int64, count=len(seen)))
    with np.errstate(all="ignore"):
        extra_keys = {np.round(out[j], 12).tobytes() for j in range(n_own, len(sources))}
    basis = np.searchsorted(keep, sorted(seen[k] for k in extra_keys if k in seen))
    depths = []
    for j in keep:
        p, i = sources[j]
        node_depths = p.layout[1]
        depths.append(max(node_depths[i:p.layout[0][i]]) - node_depths[i])
    lib_out = out[keep]
    unit = None
    if XT is not None and XT.shape[0]:
        with np.errstate(all="ignore"):
            smallest = np.min(np.abs(XT), axis=1)
        if np.max(smallest) > 1e-6:
            unit = var_code(int(np.argmax(smallest)))
    with np.errstate(all="ignore"):
        norms = np.sum(lib_out * lib_out, axis=1)
    return Library([sources[j] for j in keep], lib_out, sizes[keep],
                   np.array(depths, dtype=np.int64), norms, unit,
                   np.asarray(basis, dtype=np.int64))


def _ops(g: Grammar) -> dict[str, int] | None:
    """Primitive indices of add, sub, mul and div, or None when one is missing."""
    found = {}
    for i, p in enumerate(g.primitives):
        if p.op in ("add", "sub", "mul", "div") and p.op not in found:
            found[p.op] = i
    return found if len(found) == 4 else None


def monomials(g: Grammar, XT: np.ndarray) -> tuple[list[Program], list[np.ndarray]]:
    """x, x*x, (x*x)*x, (x*x)*(x*x) for every variable and xi*xj for every pair, with
    their outputs ((1, rows) each)."""
    ops = _ops(g)
    if ops is None:
        return [], []
    m = ops["mul"]
    progs, outs = [], []
    n = XT.shape[0]
    with np.errstate(all="ignore"):
        for i in range(n):
            v, x = var_code(i), XT[i].astype(np.float64)
            sq = (m, v, v)
            for codes, o in (((v,), x), (sq, x * x), ((m, *sq, v), (x * x) * x),
                             ((m, *sq, *sq), (x * x) * (x * x))):
                progs.append(Program._trusted(g, tuple(codes), ()))
                outs.append(np.asarray(o, dtype=np.float64)[None, :])
            for k in range(i + 1, n):
                progs.append(Program._trusted(g, (m, v, var_code(k)), ()))
                outs.append((x * XT[k])[None, :])
    return progs, outs


def invert(op: str, k: int, desired: np.ndarray, other: np.ndarray | None,
           current: np.ndarray) -> np.ndarray | None:
    """What argument k of `op` should output so that the node outputs `desired`, given
    the other argument's outputs and argument k's present outputs (which pick the
    branch of a many-valued inverse). NaN where no value works or any value does;
    None for operators without an inverse here."""
    d, s, c = desired, other, current
    with np.errstate(all="ignore"):
        if op == "add":
            r = d - s
        elif op == "sub":
            r = d + s if k == 0 else s - d
        elif op == "mul":
            r = np.where(s != 0, d / s, np.nan)
        elif op == "div":  # protected: |divisor| <= EPS gives 1
            r = (np.where(np.abs(s) > EPS, d * s, np.nan) if k == 0
                 else np.where(d != 0, s / d, np.nan))
            if k == 1:
                r = np.where(np.abs(r) > EPS, r, np.nan)
        elif op == "neg":
            r = -d
        elif op == "exp":
            r = np.where(d > 0, np.log(d), np.nan)
        elif op == "log":  # protected: log|x|, so keep the present sign
            r = np.copysign(np.exp(d), c)
        elif op == "sqrt":  # protected: sqrt|x|
            r = np.where(d >= 0, np.copysign(d * d, c), np.nan)
        elif op == "square":
            r = np.where(d >= 0, np.copysign(np.sqrt(d), c), np.nan)
        elif op == "tanh":
            r = np.where(np.abs(d) < 1, np.arctanh(d), np.nan)
        elif op == "sin":
            a = np.arcsin(np.where(np.abs(d) <= 1, d, np.nan))
            r = _nearest(c, a, math.pi - a)
        elif op == "cos":
            a = np.arccos(np.where(np.abs(d) <= 1, d, np.nan))
            r = _nearest(c, a, -a)
        else:
            return None
    return np.where(np.isfinite(r), r, np.nan)


def _nearest(current: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Of a + 2 pi k and b + 2 pi k, the value nearest `current`."""
    ca = a + TWO_PI * np.round((current - a) / TWO_PI)
    cb = b + TWO_PI * np.round((current - b) / TWO_PI)
    return np.where(np.abs(ca - current) <= np.abs(cb - current), ca, cb)


def desired_outputs(parent: Program, node: int, outputs: np.ndarray,
                    y: np.ndarray) -> np.ndarray | None:
    """The outputs node `node` of `parent` should have for the program to output y
    (outputs: the parent's subtree outputs, (size, rows)); None when an operator on
    the path has no inverse."""
    g = parent.grammar
    ends = parent.layout[0]
    d = y.astype(np.float64, copy=True)
    at = 0
    while at != node:
        op = g.primitives[parent.codes[at]].op
        children, child = [], at + 1
        for _ in range(g.arities[parent.codes[at]]):
            children.append(child)
            child = ends[child]
        k = max(j for j, c in enumerate(children) if c <= node)
        other = outputs[children[1 - k]] if len(children) == 2 else None
        d = invert(op, k, d, other, outputs[children[k]])
        if d is None:
            return None
        at = children[k]
    return d


def rdo_child(parent: Program, outputs: np.ndarray, y: np.ndarray, library: Library,
              rng: np.random.Generator, max_size: int, max_depth: int) -> Program | None:
    """One RDO child of `parent`, or None when nothing better fits the chosen node."""
    g = parent.grammar
    node = int(rng.integers(1, parent.size)) if parent.size > 1 else 0
    d = desired_outputs(parent, node, outputs, y)
    if d is None:
        return None
    rows = np.isfinite(d)
    if 2 * int(rows.sum()) < len(d):
        return None
    all_rows = bool(rows.all())
    dv = d if all_rows else d[rows]
    with np.errstate(all="ignore"):
        now = float(np.sum((outputs[node][rows] - dv) ** 2))
    now = now if math.isfinite(now) else math.inf
    end = parent.subtree_end(node)
    room_size = max_size - (parent.size - (end - node))
    room_depth = max_depth - parent.node_depth(node)
    candidates: list[tuple[float, Program]] = []
    fits = (library.sizes <= room_size) & (library.depths <= room_depth)
    if fits.any():
        outputs_at = library.outputs if all_rows else library.outputs[:, rows]
        with np.errstate(all="ignore"):
            dist = np.sum((outputs_at - dv) ** 2, axis=1)
        dist = np.where(fits & np.isfinite(dist), dist, np.inf)
        for j in _smallest(dist, _TRIES):
            if dist[j] < np.inf:
                candidates.append((float(dist[j]), library.subtree(int(j))))
        plain = candidates[0][0] if candidates else math.inf
        if plain > 0:  # an exact library subtree cannot be beaten
            lin = _linear_candidate(library, outputs_at, dv, all_rows, room_size, room_depth)
            if lin is not None and lin[0] < plain * (1 - 1e-9):
                candidates.append(lin)
    if g.constants.enabled and room_size >= 1:
        with np.errstate(all="ignore"):
            value = float(np.mean(dv))
            spread = float(np.sum((dv - value) ** 2))
        if math.isfinite(value) and math.isfinite(spread):
            candidates.append((spread, Program._trusted(g, (CONST,), (value,))))
    candidates.sort(key=lambda c: c[0])
    for dist_j, sub in candidates:
        if not dist_j < now * (1 - 1e-12):  # no better than what is there
            break
        child = replace_subtree(parent, node, sub)
        if is_valid(child):
            return child
    return None


def _linear_candidate(library: Library, A: np.ndarray, d: np.ndarray, all_rows: bool,
                      room_size: int, room_depth: int) -> tuple[float, Program] | None:
    """Linear RDO: d ~ c1 * s1 (+ c2 * s2) over library outputs s (rows of A), the
    coefficients from _COEF_VALUES: the best single term (least-squares coefficient,
    rounded) and the best pair (joint least-squares coefficients, rounded; s1 among
    the best few single fits and the monomials, s2 anywhere). Built without constants
    (1/2 * s as s * (v / (v + v)), ...; docs/search.md). (squared error, subtree) of
    the best combination that fits the room, or None (grammars with constants: always
    None)."""
    if library.unit is None or len(A) == 0:
        return None
    g = library.sources[0][0].grammar
    if g.constants.enabled:  # a fitted constant does this job there
        return None
    ops = _ops(g)
    if ops is None:
        return None
    with np.errstate(all="ignore"):
        norms = (library.norms if all_rows and library.norms is not None
                 else np.sum(A * A, axis=1))
        dd = float(d @ d)
    usable = ((library.sizes <= room_size - 2) & (library.depths <= room_depth - 1)
              & (norms > 0) & np.isfinite(norms))
    if not usable.any() or not math.isfinite(dd):
        return None
    records: list[tuple[float, list[int], list[int]]] = []
    with np.errstate(all="ignore"):
        b = A @ d
        ci = _round_coefs(b / norms)
        c = _COEF_VALUES[ci]
        e1 = np.where(usable & np.isfinite(b), dd - 2 * c * b + c * c * norms, np.inf)
        e1 = np.where(np.isfinite(e1), e1, np.inf)
        j1 = int(np.argmin(e1))
        if e1[j1] < dd * (1 - 1e-9):
            records.append((float(e1[j1]), [j1], [int(ci[j1])]))
        # pairs: the first term among the best few singles (by correlation and by
        # rounded error) and the monomials, the second over the whole library, both
        # coefficients from the joint least squares fit, rounded
        corr = np.where(usable, b * b / norms, -np.inf)
        firsts = np.unique(np.concatenate([
            _smallest(-corr, _FIRSTS), _smallest(e1, _FIRSTS),
            library.basis if library.basis is not None else np.empty(0, np.int64)]))
        firsts = firsts[usable[firsts]]
        best_pair = (math.inf, -1, -1, -1, -1)
        if len(firsts):
            if all_rows:
                missing = [i for i in firsts.tolist() if i not in library.gram]
                if missing:
                    for i, row in zip(missing, A[missing] @ A.T, strict=True):
                        library.gram[i] = row
                gij = np.stack([library.gram[i] for i in firsts.tolist()])
            else:
                gij = A[firsts] @ A.T  # (firsts, m)
            ni, bi = norms[firsts][:, None], b[firsts][:, None]
            det = ni * norms - gij * gij
            a = (bi * norms - b * gij) / det
            cc = (b * ni - bi * gij) / det
            ai, ci2 = _round_coefs(a), _round_coefs(cc)
            av, cv = _COEF_VALUES[ai], _COEF_VALUES[ci2]
            e2 = (dd - 2 * (av * bi + cv * b) + av * av * ni + 2 * av * cv * gij
                  + cv * cv * norms)
            ok = usable & np.isfinite(e2) & (det > 1e-12 * ni * norms)
            ok[np.arange(len(firsts)), firsts] = False
            e2 = np.where(ok, e2, np.inf)
            flat = int(np.argmin(e2))
            f, j = divmod(flat, e2.shape[1])
            if e2[f, j] < math.inf:
                best_pair = (float(e2[f, j]), int(firsts[f]), j, int(ai[f, j]), int(ci2[f, j]))
        err, i, j, ai_, cj_ = best_pair
        if i >= 0:
            res = d - _COEF_VALUES[ai_] * A[i] - _COEF_VALUES[cj_] * A[j]
            err = float(res @ res)
            records.append((err, [i, j], [ai_, cj_]))
    for err, js, cs in sorted(records, key=lambda rec: rec[0]):
        if not math.isfinite(err):
            continue
        terms = [(_COEF_FRACTIONS[c], library.subtree(j)) for j, c in zip(js, cs, strict=True)]
        sub = _combine(g, ops, library.unit, terms)
        if sub is not None and sub.size <= room_size and sub.depth <= room_depth:
            return err, sub
    return None


def _constant_codes(ops: dict[str, int], v: int, f: Fraction) -> tuple[int, ...]:
    """Codes of a tree computing the positive rational f from variable v alone:
    (v + ... + v) / (v + ... + v), or v + v for 2, v / v for 1."""
    def total(n: int) -> tuple[int, ...]:
        codes: tuple[int, ...] = (v,)
        for _ in range(n - 1):
            codes = (ops["add"], *codes, v)
        return codes
    return (ops["div"], *total(f.numerator), *total(f.denominator))


def _scaled_codes(ops: dict[str, int], v: int, f: Fraction, s: tuple[int, ...]
                  ) -> tuple[int, ...]:
    """Codes of |f| * s, the smaller of s + s (+ s ...) and s * constant."""
    f = abs(f)
    if f == 1:
        return s
    best = (ops["mul"], *s, *_constant_codes(ops, v, f))
    if f.denominator == 1 and f.numerator <= 4:
        rep = s
        for _ in range(f.numerator - 1):
            rep = (ops["add"], *rep, *s)
        if len(rep) <= len(best):
            best = rep
    return best


def _combine(g: Grammar, ops: dict[str, int], v: int,
             terms: list[tuple[Fraction, Program]]) -> Program | None:
    """The constant-free tree sum(c * s) of the terms, or None when one has constants."""
    if any(CONST in p.codes for _, p in terms):
        return None
    terms = sorted(terms, key=lambda t: t[0] < 0)  # positive terms first
    c0, p0 = terms[0]
    codes = _scaled_codes(ops, v, c0, p0.codes)
    if c0 < 0:
        codes = (ops["sub"], ops["sub"], v, v, *codes)
    for c, p in terms[1:]:
        codes = (ops["add"] if c > 0 else ops["sub"], *codes,
                 *_scaled_codes(ops, v, c, p.codes))
    return Program._trusted(g, codes, ())


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values, ties to the lower index: what
    np.argsort(values, kind="stable")[:k] gives, without sorting everything."""
    if len(values) <= k:
        return np.argsort(values, kind="stable")
    bound = np.partition(values, k - 1)[k - 1]
    near = np.flatnonzero(values <= bound)
    return near[np.argsort(values[near], kind="stable")][:k]


def rdo_children(parents: Sequence[Program], library_programs: Sequence[Program],
                 XT: np.ndarray, y: np.ndarray, rng: np.random.Generator, max_size: int,
                 max_depth: int) -> list[Program | None]:
    """RDO children of `parents` (None where the operator found nothing better), the
    library made of the subtrees of `library_programs`. Subtree outputs of parents and
    library come from one kernel call."""
    everyone = list({id(p): p for p in [*library_programs, *parents]}.values())
    outputs = dict(zip(map(id, everyone), subtree_outputs(everyone, XT), strict=True))
    library = build_library(library_programs, [outputs[id(p)] for p in library_programs], XT)
    return [rdo_child(p, outputs[id(p)], y, library, rng, max_size, max_depth)
            for p in parents]

"""SHA-256 of a batch's quantised probe rows, with the CPU's SHA instructions.

A functional key is the first 8 bytes of the sha256 of a program's quantised probe
outputs (hashing.py). hashlib hashes one row per Python call: about 0.75 µs per 512-byte
row, of which the hashing itself is half, and it holds the GIL. Here one Numba call
hashes every row of a batch, on n_jobs threads: the compression function is written
with the x86 SHA extensions (sha256rnds2, sha256msg1, sha256msg2; the sequence of
Intel's white paper "Intel SHA Extensions", 2013) as LLVM intrinsics, about 40 ns per
64-byte block. The digests are the standard ones: `hashing.fingerprint_array_reference`
(hashlib) is the twin and must give the same keys.

Only where the compiler may use those instructions (`AVAILABLE`: an x86-64 CPU with
SHA and AVX, Numba compiling for the host CPU); elsewhere hashing.py uses hashlib.
The legacy-SSE SHA instructions run after a vzeroupper: mixed with AVX-512 code that
leaves the upper register halves dirty (the zeroing loops Numba vectorises), each one
otherwise paid a state-transition penalty, 100x slower in all.
"""

from __future__ import annotations

import os
import platform

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

_JIT = dict(cache=True, error_model="numpy", nogil=True)

_ROUND_CONSTANTS = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
    0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
    0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
    0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
    0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
    0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
    0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
    0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
    0xC67178F2)
_INITIAL_STATE = np.array([0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F,
                           0x9B05688C, 0x1F83D9AB, 0x5BE0CD19], dtype=np.uint32)


def _compiler_features() -> set[str]:
    """The CPU features Numba compiles for: NUMBA_CPU_FEATURES, else the host's (none
    when NUMBA_CPU_NAME asks for another CPU, such as a portable 'generic' cache)."""
    if numba.config.CPU_NAME not in (None, "host"):
        return set()
    listed = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return {f[1:] for f in listed.split(",") if f.startswith("+")}


#: Whether the SHA-instruction kernel can be compiled and run here. HYBRID_GP_NO_SHA_NI=1
#: turns it off (hashlib is used then).
AVAILABLE = (platform.machine().lower() in ("x86_64", "amd64")
             and {"sha", "avx"} <= _compiler_features()
             and not os.environ.get("HYBRID_GP_NO_SHA_NI"))

_I32 = ir.IntType(32)
_V4 = ir.VectorType(_I32, 4)
_V16 = ir.VectorType(ir.IntType(8), 16)


def _lanes(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, idx: list[int]) -> ir.Value:
    """Lanes idx of a (0..3) and b (4..7): the shuffles, blends and alignr of the white
    paper's code."""
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(idx)), idx))


def _signed(k: int) -> int:
    return k - (1 << 32) if k >= 1 << 31 else k


@intrinsic
def _compress(typingctx, state, data, offset):
    """state (uint32[8], words a..h) updated with the 64-byte block data[offset:]."""
    if not (isinstance(state, types.Array) and state.dtype == types.uint32
            and isinstance(data, types.Array) and data.dtype == types.uint8):
        return None
    sig = types.void(state, data, types.int64)

    def codegen(context, builder, signature, args):
        st = context.make_array(signature.args[0])(context, builder, args[0])
        da = context.make_array(signature.args[1])(context, builder, args[1])
        offset = context.cast(builder, args[2], signature.args[2], types.int64)
        module = builder.module

        def declare(name: str, n_args: int, ret: ir.Type = _V4) -> ir.Function:
            return cgutils.get_or_insert_function(
                module, ir.FunctionType(ret, [_V4] * n_args), name)

        rounds = declare("llvm.x86.sha256rnds2", 3)
        msg1, msg2 = declare("llvm.x86.sha256msg1", 2), declare("llvm.x86.sha256msg2", 2)
        builder.call(declare("llvm.x86.avx.vzeroupper", 0, ir.VoidType()), [])
        words = builder.bitcast(st.data, _V4.as_pointer())
        low = builder.load(words, align=4)  # a b c d
        high = builder.load(builder.gep(words, [ir.Constant(_I32, 1)]), align=4)  # e f g h
        abef = abef_in = _lanes(builder, low, high, [5, 4, 1, 0])
        cdgh = cdgh_in = _lanes(builder, low, high, [7, 6, 3, 2])
        block = builder.bitcast(builder.gep(builder.bitcast(da.data, ir.IntType(8).as_pointer()),
                                            [offset]), _V16.as_pointer())
        big_endian = ir.Constant(ir.VectorType(_I32, 16),
                                 [4 * (i // 4) + 3 - i % 4 for i in range(16)])
        w = []  # the message schedule, four words at a time
        for i in range(4):
            raw = builder.load(builder.gep(block, [ir.Constant(_I32, i)]), align=1)
            w.append(builder.bitcast(builder.shuffle_vector(raw, raw, big_endian), _V4))
        for g in range(16):  # four rounds each
            if g >= 4:
                x = builder.call(msg1, [w[g - 4], w[g - 3]])
                x = builder.add(x, _lanes(builder, w[g - 2], w[g - 1], [1, 2, 3, 4]))
                w.append(builder.call(msg2, [x, w[g - 1]]))
            k = [_signed(c) for c in _ROUND_CONSTANTS[4 * g:4 * g + 4]]
            m = builder.add(w[g], ir.Constant(_V4, k))
            cdgh = builder.call(rounds, [cdgh, abef, m])
            abef = builder.call(rounds, [abef, cdgh, _lanes(builder, m, m, [2, 3, 0, 0])])
        abef = builder.add(abef, abef_in)
        cdgh = builder.add(cdgh, cdgh_in)
        builder.store(_lanes(builder, abef, cdgh, [3, 2, 7, 6]), words, align=4)
        builder.store(_lanes(builder, abef, cdgh, [1, 0, 5, 4]),
                      builder.gep(words, [ir.Constant(_I32, 1)]), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(**_JIT)
def _byteswap32(x):
    return (((x & np.uint64(0xFF)) << np.uint64(24)) | ((x & np.uint64(0xFF00)) << np.uint64(8))
            | ((x >> np.uint64(8)) & np.uint64(0xFF00)) | (x >> np.uint64(24)))


@njit(**_JIT)
def _head(data, start, width, state, tail):
    """The first 8 bytes of sha256(data[start:start + width]), read as a little-endian
    int64 (what hashlib's digest()[:8] gives with numpy's '<i8')."""
    for q in range(8):
        state[q] = _INITIAL_STATE[q]
    full = width // 64
    for b in range(full):
        _compress(state, data, start + 64 * b)
    rest = width - 64 * full
    for q in range(128):
        tail[q] = 0
    for q in range(rest):
        tail[q] = data[start + 64 * full + q]
    tail[rest] = 0x80  # the padding: one bit, zeros, the length in bits (big-endian)
    n_tail = 64 if rest < 56 else 128
    bits = np.uint64(width) * np.uint64(8)
    for q in range(8):
        tail[n_tail - 1 - q] = np.uint8((bits >> np.uint64(8 * q)) & np.uint64(0xFF))
    _compress(state, tail, 0)
    if n_tail == 128:
        _compress(state, tail, 64)
    a, b = np.uint64(state[0]), np.uint64(state[1])
    return np.int64(_byteswap32(a) | (_byteswap32(b) << np.uint64(32)))


@njit(**_JIT)
def _heads_of(r0, r1, data, width, out):
    state = np.empty(8, np.uint32)
    tail = np.empty(128, np.uint8)
    for r in range(r0, r1):
        out[r] = _head(data, r * width, width, state, tail)


@njit(**_JIT)
def sha256_heads(data, width, out):
    """out[r] = the first 8 bytes of the sha256 of row r, data[r * width:][:width], as a
    little-endian int64."""
    _heads_of(0, out.shape[0], data, width, out)


@njit(parallel=True, **_JIT)
def sha256_heads_parallel(data, width, out, workers):
    """As sha256_heads, the rows split into `workers` equal runs."""
    n = out.shape[0]
    for w in prange(workers):
        _heads_of(w * n // workers, (w + 1) * n // workers, data, width, out)

"""Benchmarks shipped with the package (`hybrid-gp bench ...`).

eval: evaluation throughput of the Numba kernels against DEAP compile + numpy, numpy
one operation per node and, when installed, pyoperon, on the same trees and data.
"""

"""Numba kernels over flat arrays. They know nothing of Program objects.

Every kernel has a plain-numpy twin in `reference.py`; tests compare the two.
"""

"""Shared fixtures. Nothing is seeded at import: each test gets its own Generator."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.rng import stream


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A Generator seeded from the test's name: stable per test, independent across tests."""
    return stream(0, request.node.nodeid)


@pytest.fixture(scope="session")
def full() -> hg.Grammar:
    return hg.load_grammar("full")


@pytest.fixture(scope="session")
def koza() -> hg.Grammar:
    return hg.load_grammar("koza")

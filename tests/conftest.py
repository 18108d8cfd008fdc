"""Shared fixtures. Nothing is seeded at import: each test gets its own Generator."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import hybrid_gp as hg
from hybrid_gp.rng import stream

# CI replays the same hypothesis examples every time (a failure there is reproducible);
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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

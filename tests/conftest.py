"""Fixtures shared by several test modules. Each is module-scoped: a module gets its own copy,
which it may add to. Helpers are imported inside the fixtures so that a test file that needs
none of them does not pay for TensorFlow or PyAV at collection."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny prepared dataset whose texture_k3 labels a model learns (records.py)."""
    from records import write_learnable_dataset

    return write_learnable_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """A small AudioSet-shaped corpus with every kind of broken input (corpus.py)."""
    from corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"))

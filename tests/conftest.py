"""Shared fixtures (the helpers themselves are in tests/helpers.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import reswise_tf  # noqa: E402,F401  (imports TF once, before the tests)
from tests.helpers import write_image_folder  # noqa: E402


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    write_image_folder(str(root), [0, 1, 2], per_class=4)
    return str(root)

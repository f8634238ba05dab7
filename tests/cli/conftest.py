import sys

import pytest


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """The CLI is driven through `args=`; pytest's own argv must not look like CLI input."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])

"""CI guard shared by tests that need a tool of the machine (bubblewrap, unshare, Chromium).

Locally a missing tool skips the test with the reason. Under CI (``CI=true``, set by ``.ci/run``)
the tool is part of the set-up, so its absence is a failure, never a silent skip.
"""

import os

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str):
    """Skip with ``reason``, or fail under CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this protection must work in CI; run `make sandbox`)")
    pytest.skip(reason)

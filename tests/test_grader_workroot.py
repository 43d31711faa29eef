"""A deep TMPDIR must not break grading: kernels' Unix sockets have a 107-byte path limit
(found when a reference run failed with ZMQError "File name too long" under a long tmp path)."""

import tempfile
from pathlib import Path

from coursekit.grade.sandbox import _MAX_WORKROOT, make_workroot


def test_workroot_is_short_enough_for_kernel_sockets(tmp_path, monkeypatch):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    root = make_workroot("cnn-grade-")
    try:
        socket = root / "k12345678" / "rt" / "k-99"
        assert len(str(socket)) <= 107 and len(str(root)) <= _MAX_WORKROOT
        assert root.is_dir() and not any(deep.iterdir())  # nothing left in the deep folder
    finally:
        root.rmdir()


def test_workroot_stays_in_a_short_tmpdir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = make_workroot("cnn-grade-")
    assert root.parent == tmp_path  # tests rely on finding the kernels' folders there
    root.rmdir()
    assert Path(tmp_path).is_dir()

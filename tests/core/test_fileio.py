"""Atomic writes: all or nothing, usual permissions, a clear error when the folder cannot take the file."""

import os

import pytest

from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path, write_text_atomic


def test_replaces_whole_file_with_usual_permissions(tmp_path):
    target = tmp_path / "out" / "a.txt"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second")
    assert target.read_text() == "second"
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [path.name for path in target.parent.iterdir()] == ["a.txt"]


def test_failure_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["a.txt"]


def test_os_error_names_the_file(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(MlferError, match="a.txt"), atomic_path(target) as temporary:
        raise OSError(28, "No space left on device", str(temporary))
    assert list(tmp_path.iterdir()) == []

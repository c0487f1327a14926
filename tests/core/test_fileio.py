"""Atomic writes: all or nothing, usual permissions, a clear error when the folder cannot take the file."""

import os
import signal
import time

import pytest

from faults import read_only_folder
from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path, folder_lock, write_text_atomic


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


@pytest.mark.parametrize(
    "where",
    [
        lambda tmp: tmp / "a-file" / "out.txt",  # the parent is a file
        lambda tmp: tmp / "a-file" / "deeper" / "out.txt",  # a folder to create under a file
        lambda tmp: tmp / ("x" * 300 + ".txt"),  # a name longer than the file system allows
        lambda tmp: tmp / ("y" * 300) / "out.txt",  # a folder name too long
        lambda tmp: tmp / "a-folder",  # an existing folder in the way
    ],
)
def test_unwritable_destinations_give_an_error_naming_the_file(tmp_path, where):
    (tmp_path / "a-file").write_text("in the way")
    (tmp_path / "a-folder").mkdir()
    target = where(tmp_path)
    with pytest.raises(MlferError, match="cannot write") as caught:
        write_text_atomic(target, "text")
    assert caught.value.path == str(target)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "a-folder"]


def test_a_read_only_destination_gives_an_error_naming_the_file(tmp_path):
    with read_only_folder(tmp_path / "ro") as folder:
        for target in (folder / "out.txt", folder / "sub" / "out.txt"):
            with pytest.raises(MlferError, match="cannot write.*Read-only") as caught:
                write_text_atomic(target, "text")
            assert caught.value.path == str(target)


def test_an_error_about_another_file_names_that_file(tmp_path):
    other = tmp_path / "annotated" / "x.jpg"
    with pytest.raises(MlferError) as caught, atomic_path(tmp_path / "table.csv"):
        raise OSError(30, "Read-only file system", str(other))
    assert caught.value.path == str(other) and "table.csv" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_locked_folder_names_the_process_holding_it(tmp_path):
    with folder_lock(tmp_path / "run"):
        with (
            pytest.raises(MlferError, match=f"in use by process {os.getpid()}") as caught,
            folder_lock(tmp_path / "run"),
        ):
            pass
        assert caught.value.path == str(tmp_path / "run")
    with folder_lock(tmp_path / "run"):  # released at the end of the block
        pass
    assert list((tmp_path / "run").iterdir()) == []  # and the lock file is gone


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes the lock, says so, and waits to be killed
        try:
            with folder_lock(tmp_path / "run"):
                os.write(ready_write, b"1")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"1"
        with pytest.raises(MlferError, match=f"in use by process {pid}"), folder_lock(tmp_path / "run"):
            pass
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with folder_lock(tmp_path / "run"):  # the kernel dropped the dead process's lock
        pass

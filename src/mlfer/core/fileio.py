"""Output files and folders: atomic writes (a killed process never leaves a half-written file
behind), destinations checked before the work, folders locked by one run at a time, and file
names made printable."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from mlfer.core.errors import MlferError

#: The lock file of a folder in use (:func:`folder_lock`); hidden, and gone after a normal end.
LOCK_FILE = ".lock"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The rename is atomic on one file system, so readers see the old file or the whole new
    one. On any error (a full disk included) the temporary file is removed. A destination
    that cannot take the file (a read-only or full file system, a parent that is a file, a
    name too long, a folder in the way) gives an :class:`MlferError` naming ``path``; an
    ``OSError`` about another file, raised by the code writing, names that file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The name is cut so that the temporary's name fits wherever the file's own does.
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".part", dir=path.parent)
        os.close(handle)
    except OSError as error:
        raise MlferError(f"cannot write the file ({error.strerror or error})", path=path) from error
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(temporary_path, path)
    except (OSError, SafetensorError) as error:  # safetensors reports a full disk as its own error
        temporary_path.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or error
        other = getattr(error, "filename", None)
        if other is not None and os.fspath(other) not in (temporary, os.fspath(path)):
            raise MlferError(str(reason), path=other) from error
        raise MlferError(f"cannot write the file ({reason})", path=path) from error
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder`` (created if missing) for this process while the block runs.

    The lock is ``flock`` on ``folder/.lock``, which records the holder's process id; a
    second holder gets an :class:`MlferError` "in use by process N" at once. The kernel
    drops the lock when its holder dies, so a killed run leaves nothing that blocks.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise MlferError(f"cannot write the file ({error.strerror or error})", path=path) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
            os.close(handle)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise MlferError(
                f"in use by {who} (another mlfer run); wait for it to end or choose another folder", path=folder
            ) from None
        if _same_file(handle, path):
            break
        os.close(handle)  # the file was removed by the holder that just ended: lock the new one
    try:
        with contextlib.suppress(OSError):  # the holder's id is for messages only (a full disk may refuse it)
            os.ftruncate(handle, 0)
            os.pwrite(handle, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked, so no one locks the removed file
        os.close(handle)


def _same_file(handle: int, path: Path) -> bool:
    """Whether the open file descriptor ``handle`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False


def check_destination(path: str | Path, folder: bool = False) -> None:
    """Refuse, before any work, an output that could not be written.

    That is: a folder where a file is to go (or a file where a folder is to go), a parent
    that is a file, a name longer than the file system allows, or a place that is read-only
    or not this user's to write.

    Args:
        path: the output file, or with ``folder`` the output folder.
        folder: ``path`` is a folder that files are written into.
    """
    path = Path(path)
    try:
        _check_destination(path, folder)
    except OSError as error:  # a name too long for the file system, a loop of links...
        raise MlferError(f"cannot write there ({error.strerror or error})", path=path) from error


def _check_destination(path: Path, folder: bool) -> None:
    if path.exists() and path.is_dir() != folder:
        raise MlferError("is a file, not a folder" if folder else "is a folder, not a file", path=path)
    existing, new = (path, []) if path.is_dir() else (path.parent, [path.name])
    while not existing.exists():
        new.append(existing.name)
        existing = existing.parent
    if not existing.is_dir():
        raise MlferError(f"cannot write there: {existing} is a file, not a folder", path=path)
    limit = os.pathconf(existing, "PC_NAME_MAX")
    if any(len(os.fsencode(name)) > limit for name in new):
        raise MlferError(f"cannot write there: a name is longer than the file system allows ({limit} bytes)", path=path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MlferError(f"cannot write there: {existing} is read-only, or not yours to write", path=path)


def printable(text: str) -> str:
    """``text`` in a form any UTF-8 file takes: unchanged, unless it holds a backslash or bytes
    of a file name that do not decode (held as surrogate escapes, see :func:`os.fsdecode`);
    then backslashes are doubled and each such byte is written ``\\xNN``, so that no two
    names come out alike."""
    try:
        text.encode("utf-8")
        if "\\" not in text:
            return text
    except UnicodeEncodeError:
        pass
    doubled = text.replace("\\", "\\\\")
    try:
        return doubled.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate, which no file name gives: written \\uXXXX
        return doubled.encode("utf-8", "backslashreplace").decode("utf-8")

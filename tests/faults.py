"""Shared helpers of the fuzz and fault tests (and of ``scripts/reliability.py``).

Fuzzing: :func:`check_case` runs one call on fuzzed input with a time bound and sorts its
outcome into a correct result, a clear :class:`MlferError`, a crash or a hang;
:func:`mutated` draws damaged variants of a valid file.

Faults: :func:`run_cli` runs ``mlfer`` in a child forked from a server that imported mlfer,
torch and mediapipe once (a fresh interpreter takes 5-10 s to import them here), kills it
with SIGKILL at a chosen moment, and :func:`check_outputs` checks that every file left
behind is either complete or a hidden temporary of :func:`mlfer.core.fileio.atomic_path`.

Every outcome is appended, as one JSON line, to the file named by ``$MLFER_RELIABILITY_LOG``
when it is set; ``scripts/reliability.py`` turns the log into the table of docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import pickle
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq
import yaml
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open

from mlfer.cli import COMMANDS, main
from mlfer.core.errors import MlferError

T = TypeVar("T")

#: Longest a single fuzz case may run before it counts as a hang.
CASE_SECONDS = 10.0
#: A soak run (``MLFER_SOAK=1``, set by ``scripts/reliability.py``): more cases, fresh runs per kill.
SOAK = os.environ.get("MLFER_SOAK") == "1"
#: Outcome names, as they appear in the log and the table.
RESULT, CLEAR_ERROR, CRASH, HANG, UNCLEAR_ERROR, HALF_WRITTEN = (
    "correct result",
    "clear error",
    "crash",
    "hang",
    "error naming no file or setting",
    "half-written output",
)


def examples(count: int) -> int:
    """Hypothesis ``max_examples``: ``count`` in CI, 10 times more for a soak run."""
    return count * 10 if SOAK else count


def kills(count: int, soak: int | None = None) -> int:
    """Kill moments per command: ``count`` in CI, ``soak`` (default 3 times more, each on a fresh
    run) for a soak run."""
    return (soak or count * 3) if SOAK else count


def record(target: str, outcome: str, detail: str = "") -> None:
    """Append one outcome to ``$MLFER_RELIABILITY_LOG`` (no-op when unset)."""
    log = os.environ.get("MLFER_RELIABILITY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"target": target, "outcome": outcome, "detail": detail[:300]}) + "\n")


class CaseFailure(AssertionError):
    """A fuzz case or a fault run ended in a crash, a hang, an unclear error or a broken file."""


def _bounded(call: Callable[[], T], seconds: float) -> tuple[str, Any]:
    """Run ``call`` in a daemon thread: ("done", value), ("raised", exception) or ("hang", None)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return "hang", None
    return ("raised", box["error"]) if "error" in box else ("done", box.get("value"))


def _isolated(call: Callable[[], T], seconds: float) -> tuple[str, Any]:
    """Like :func:`_bounded`, in a forked child: a crash of native code (a signal) or a hang
    is caught too, and the child is killed on a hang. Errors come back as their text and place."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the outcome, never return into the test runner
        os.close(read_end)
        try:
            try:
                reply: tuple[Any, ...] = ("done", call())
            except MlferError as error:
                reply = ("mlfer", str(error), error.path, error.line, error.field)
            except BaseException as error:
                reply = ("raised", RuntimeError("".join(traceback.format_exception(error))))
            with os.fdopen(write_end, "wb") as stream:
                pickle.dump(reply, stream)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        ready, _, _ = select.select([stream], [], [], seconds)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang", None
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "raised", RuntimeError(f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}")
    reply = pickle.loads(data)
    if reply[0] != "mlfer":
        return reply
    error = MlferError(reply[1])
    error.path, error.line, error.field = reply[2:]
    return "raised", error


def _memory_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_memory_growth(call: Callable[[], T]) -> tuple[T | BaseException, int]:
    """Run ``call``; its result (or the exception it raised) and how many bytes the process's
    peak resident memory rose above the memory in use at the start (Linux: the kernel's peak,
    VmHWM, is reset through ``/proc/self/clear_refs`` first)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as reset:
        reset.write("5")
    start = _memory_kib("VmRSS")
    try:
        outcome: T | BaseException = call()
    except BaseException as error:
        outcome = error
    return outcome, (_memory_kib("VmHWM") - start) * 1024


#: Most the peak memory may grow in a case fed a bomb or a model folder asking for huge sizes.
MEMORY_BOUND = 100_000_000


def within_memory(call: Callable[[], T], bound: int = MEMORY_BOUND) -> Callable[[], T]:
    """``call``, failing (as a crash, in :func:`check_case`) when the process's peak memory
    grows by more than ``bound`` bytes while it runs (see :func:`peak_memory_growth`)."""

    def measured() -> T:
        outcome, growth = peak_memory_growth(call)
        if growth > bound:
            raise CaseFailure(f"the peak memory grew by {growth / 1e6:.0f} MB (bound {bound / 1e6:.0f} MB)")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return measured


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``folder`` (created) with the mount ``options`` (``size=1m``,
    ``ro,size=64k``); it needs root and a kernel that allows it, and the test is skipped otherwise."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def read_only_folder(folder: Path) -> contextlib.AbstractContextManager[Path]:
    """``folder`` as a read-only file system (a read-only tmpfs: permission bits do not stop root)."""
    return tmpfs(folder, "ro,size=64k")


def names_place(error: MlferError) -> bool:
    """Whether an error points inside its file: a line, a field, or a row/line/column in its words."""
    return error.line is not None or error.field is not None or bool(re.search(r"\b(row|line|column)\b", str(error)))


def _names_input(error: MlferError, inputs: Sequence[Path]) -> bool:
    if not inputs:  # fuzzed options, not files: the option must be named
        return error.field is not None
    if error.path is None:
        return False
    named = Path(os.path.abspath(error.path))  # not resolve(): the path may hold a NUL byte
    return any(named == path.absolute() or path.absolute() in named.parents for path in inputs)


def check_case(
    target: str, call: Callable[[], T], inputs: Sequence[Path], seconds: float = CASE_SECONDS, isolated: bool = False
) -> T | MlferError:
    """Run one fuzz case and fail unless it gives a result or a clear :class:`MlferError`.

    A clear error carries the path of one of ``inputs`` (or of a file inside one of them);
    with no ``inputs`` (fuzzed options), the option it concerns.

    Args:
        target: what is fuzzed, the row of the reliability table.
        call: the call under test.
        inputs: the fuzzed files and folders.
        seconds: the time bound of the case.
        isolated: run it in a forked child, for code that calls native parsers (a segfault
            then fails the case instead of the test run); the result must pickle.

    Returns:
        The call's result, or the MlferError it raised.
    """
    status, value = (_isolated if isolated else _bounded)(call, seconds)
    if status == "hang":
        record(target, HANG)
        raise CaseFailure(f"{target}: no answer after {seconds} s")
    if status == "done":
        record(target, RESULT)
        return value
    if not isinstance(value, MlferError):
        record(target, CRASH, f"{type(value).__name__}: {value}")
        raise CaseFailure(
            f"{target}: {type(value).__name__} instead of MlferError:\n" + "".join(traceback.format_exception(value))
        )
    if not _names_input(value, inputs):
        record(target, UNCLEAR_ERROR, str(value))
        raise CaseFailure(f"{target}: the error does not name the input file or option: {value}")
    record(target, CLEAR_ERROR, f"{'at a place' if names_place(value) else 'whole file'}: {value}")
    return value


#: Text that readers choke on: non-numbers, non-finite numbers, control and non-UTF-8 bytes.
BAD_TOKENS = (
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b"1e999",
    b"-1",
    b"-0",
    b"2",
    b"0.5",
    b"abc",
    b"",
    b" ",
    b"\t",
    b",",
    b",,",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"#",
    b'"',
    b"'",
    b"1/0",
    b"9" * 40,
    b"\xe2\x80\xae",
)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> tuple[bytes, bool]:
    """A damaged variant of ``valid`` and whether it is still ``valid`` untouched.

    Damage: truncation, byte flips, a bad token inserted or replacing a word, a line
    deleted or repeated, random bytes, an empty file.
    """
    kind = draw(st.sampled_from(("none", "truncate", "flip", "insert", "replace", "lines", "random", "empty")))
    if kind == "none" or (not valid and kind not in ("random", "insert")):
        return valid, True
    if kind == "truncate":
        return valid[: draw(st.integers(0, len(valid) - 1))], False
    if kind == "flip":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data), bytes(data) == valid
    if kind == "insert":
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from(BAD_TOKENS)) + valid[at:], False
    if kind == "replace":
        words = re.split(rb"(\s+|,)", valid)
        at = draw(st.integers(0, len(words) - 1))
        words[at] = draw(st.sampled_from(BAD_TOKENS))
        data = b"".join(words)
        return data, data == valid
    if kind == "lines":
        lines = valid.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines) - 1))
        lines[at : at + 1] = [] if draw(st.booleans()) else [lines[at]] * draw(st.integers(2, 3))
        data = b"".join(lines)
        return data, data == valid
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=400)), False
    return b"", False


def flip_last_byte(path: Path) -> None:
    """Flip one bit of a file's last byte: in a safetensors file, inside the last tensor's data."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x10
    path.write_bytes(bytes(data))


def cut_in_half(path: Path) -> None:
    """Truncate a file to half its size."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@dataclass
class Run:
    """How one ``mlfer`` run in a child process ended.

    Args:
        argv: the command line after ``mlfer``.
        exit_code: the exit status; negative (-9) when killed by a signal; None on a hang.
        seconds: wall time from start to end.
        stdout, stderr: what it printed.
        killed: whether :func:`run_cli` killed it on purpose.
    """

    argv: list[str]
    exit_code: int | None
    seconds: float
    stdout: str
    stderr: str
    killed: bool = False

    def check_finished(self) -> None:
        """Fail, showing its output, unless the run finished with status 0."""
        if self.exit_code != 0:
            raise CaseFailure(
                f"mlfer {' '.join(self.argv)} ended with {self.exit_code} after {self.seconds:.1f} s:\n"
                f"{self.stdout[-2000:]}\n{self.stderr[-4000:]}"
            )

    def error_line(self) -> str:
        """The one-line ``mlfer CMD: error: ...`` message of a failed run (empty if none)."""
        lines = self.stderr.splitlines()
        return next((line for line in lines if line.startswith("mlfer ") and ": error: " in line), "")


#: Modules the fork server imports once (with every command module), so that each child starts at once.
PRELOAD = ["mlfer.cli", *COMMANDS, "mlfer.train.run_folder", "mlfer.faces.detect", "mediapipe", "matplotlib.pyplot"]
_CONTEXT: multiprocessing.context.ForkServerContext | None = None


def fork_server() -> multiprocessing.context.ForkServerContext:
    """The fork server's context: its children start from a process that imported mlfer, torch and
    MediaPipe and ran nothing, whatever the test process has run (threads, MediaPipe graphs,
    exports) that makes a plain fork of it unsafe."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


def _child(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    """Body of the child: its own process group, output to files, ``mlfer.cli.main(argv)``."""
    os.setpgid(0, 0)
    for number, name in ((1, out), (2, err)):
        handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, number)
        os.close(handle)
    os.environ.update(env)
    multiprocessing.set_start_method(None, force=True)  # the platform's default, as in a fresh `mlfer`
    import torch  # imported by the fork server already

    torch.set_num_threads(1)
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _kill_group(pid: int) -> None:
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


def run_cli(
    argv: Sequence[str],
    scratch: Path,
    *,
    kill_after: float | None = None,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``mlfer ARGV`` in a child process and wait for it.

    Args:
        argv: the arguments after ``mlfer``.
        scratch: a folder for the captured output.
        kill_after: SIGKILL the child (and its workers) this many seconds after the start.
        timeout: longest wait; then the child is killed and the run counts as a hang
            (``exit_code`` None).
        env: environment variables set in the child.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    out, err = scratch / "stdout.txt", scratch / "stderr.txt"
    process = fork_server().Process(target=_child, args=(list(argv), dict(env or {}), str(out), str(err)))
    start = time.monotonic()
    process.start()
    killed = False
    if kill_after is not None:
        process.join(kill_after)
        if process.exitcode is None:
            _kill_group(process.pid)
            killed = True
    process.join(timeout)
    hung = process.exitcode is None
    if hung:
        _kill_group(process.pid)
        process.join()
    else:
        _kill_group(process.pid)  # DataLoader workers left behind by a killed parent
    seconds = time.monotonic() - start
    printed = [path.read_text(errors="replace") if path.is_file() else "" for path in (out, err)]
    return Run(list(argv), None if hung else process.exitcode, seconds, *printed, killed)


def is_temporary(relative: Path) -> bool:
    """Whether a file (relative to the output folder) is a hidden temporary: ``.NAME.XXXX.part`` of
    :func:`mlfer.core.fileio.atomic_path`, or anything in a hidden folder. No reader takes these for outputs."""
    hidden_name = relative.name.startswith(".") and relative.name.endswith(".part")
    return hidden_name or any(part.startswith(".") for part in relative.parts[:-1])


def _check_csv(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError("no header")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"rows of {sorted(widths)} fields")


def _check_safetensors(path: Path) -> None:
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            handle.get_tensor(key)


def _check_image(path: Path) -> None:
    with Image.open(path) as image:
        image.load()


def _check_parquet(path: Path) -> None:
    pq.read_table(path)


def _check_yaml(path: Path) -> None:
    yaml.safe_load(path.read_text(encoding="utf-8"))


def _check_jsonl(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        json.loads(line)


#: How each kind of output file is checked to be complete.
CHECKERS: dict[str, Callable[[Path], None]] = {
    ".json": lambda path: json.loads(path.read_text(encoding="utf-8")),
    ".jsonl": _check_jsonl,
    ".csv": _check_csv,
    ".yaml": _check_yaml,
    ".safetensors": _check_safetensors,
    ".png": _check_image,
    ".jpg": _check_image,
    ".parquet": _check_parquet,
}


@dataclass
class OutputCheck:
    """The files found under an output folder after a run.

    Args:
        complete: output files that parse.
        broken: ``(file, problem)`` of visible files that do not parse or are stray temporaries.
        temporaries: hidden temporaries (left by a kill mid-write; never read as outputs).
    """

    complete: list[Path] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)


def check_outputs(folder: Path, verify: Callable[[Path], None] | None = None) -> OutputCheck:
    """Parse every file under ``folder`` by its suffix (see :data:`CHECKERS`).

    Args:
        folder: the output folder (or a single output file).
        verify: a further check of each visible file (a checksum), raising when it fails.
    """
    found = OutputCheck()
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if is_temporary(path.relative_to(folder.parent if folder.is_file() else folder)):
            found.temporaries.append(path)
            continue
        if path.suffix in (".part", ".tmp"):
            found.broken.append((path, "a visible temporary file"))
            continue
        try:
            CHECKERS.get(path.suffix.lower(), lambda _: None)(path)
            if verify is not None:
                verify(path)
        except Exception as error:
            found.broken.append((path, f"{type(error).__name__}: {error}"))
            continue
        found.complete.append(path)
    return found


#: Outcomes of one injected kill and of the rerun after it.
KILLED_WHOLE, FINISHED_FIRST, RERUN_DONE, RERUN_FAILED = (
    "killed, outputs whole",
    "finished before the kill",
    "rerun completed",
    "rerun failed",
)


@dataclass
class Command:
    """A command whose runs are killed: how it starts, how it is rerun, what it writes.

    Args:
        target: its name in the reliability table (``mlfer train``).
        first: the arguments of a first run.
        rerun: the arguments of a rerun after a kill (``--resume`` for ``mlfer train``).
        outputs: the folders and files it writes.
        verify: a further check of each output file (see :func:`check_outputs`).
        env: environment variables of its runs.
    """

    target: str
    first: list[str]
    rerun: list[str]
    outputs: list[Path]
    verify: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def check(self, after: str) -> int:
        """Fail (recording a half-written output) unless every output file is whole; the
        number of hidden temporaries left."""
        broken, temporaries = [], 0
        for output in self.outputs:
            if output.exists():
                found = check_outputs(output, self.verify)
                broken += found.broken
                temporaries += len(found.temporaries)
        if broken:
            problems = "; ".join(f"{path}: {problem}" for path, problem in broken)
            record(self.target, HALF_WRITTEN, problems)
            raise CaseFailure(f"{self.target}: after {after}, broken outputs: {problems}")
        return temporaries

    def reset(self) -> None:
        """Remove every output, for a fresh first run."""
        import shutil

        for output in self.outputs:
            if output.is_dir():
                shutil.rmtree(output)
            else:
                output.unlink(missing_ok=True)


def _killed(command: Command, run: Run) -> None:
    """Check one run that was to be killed: killed (or already done), outputs whole."""
    if run.exit_code is None:
        record(command.target, HANG)
        raise CaseFailure(f"{command.target}: no end after {run.seconds:.0f} s")
    if run.exit_code not in (0, -signal.SIGKILL):
        record(command.target, RERUN_FAILED, run.error_line() or run.stderr[-300:])
        run.check_finished()
    temporaries = command.check(f"a kill at {run.seconds:.2f} s")
    record(command.target, KILLED_WHOLE if run.killed else FINISHED_FIRST, f"{temporaries} hidden temporaries")


def _finished(command: Command, run: Run) -> None:
    """Check a rerun that was left to end: exit status 0, outputs whole."""
    if run.exit_code != 0:
        record(command.target, RERUN_FAILED, run.error_line() or run.stderr[-300:])
        run.check_finished()
    command.check("a rerun")
    record(command.target, RERUN_DONE)


def kill_series(command: Command, duration: float, count: int, scratch: Path, seed: int, fresh: bool = False) -> int:
    """SIGKILL runs of ``command`` at random moments until ``count`` runs were killed, checking the
    outputs after each kill and that a rerun completes; returns the number of runs started.

    Args:
        command: the command under test.
        duration: the moments are drawn uniformly from ``(0, duration)``: use the measured
            duration of one uninterrupted run (replaced by that of any first run that ends
            before its kill).
        count: how many runs to kill.
        scratch: a folder for the captured output.
        seed: seeds the moments.
        fresh: each kill on a fresh first run, followed by a rerun to the end (slow: for the
            soak). Otherwise each rerun is the next run killed, from where the last one
            stopped, until one ends by itself; the next kill then starts afresh.
    """
    generator = random.Random(seed)
    arguments, killed, started = command.first, 0, 0
    while killed < count:
        if started >= 4 * count:
            raise CaseFailure(f"{command.target}: only {killed} of {started} runs lasted until their kill")
        if fresh:
            command.reset()
        run = run_cli(arguments, scratch, kill_after=duration * generator.random(), env=command.env)
        started += 1
        _killed(command, run)
        killed += run.killed
        first = arguments is command.first
        if first and not run.killed:  # a whole first run: the best measure of the duration
            duration = run.seconds
        if fresh:
            _finished(command, run_cli(command.rerun, scratch, env=command.env))
        elif run.killed:
            arguments = command.rerun
        else:  # it ended by itself: after a kill, that is the rerun completed
            if not first:
                record(command.target, RERUN_DONE)
            command.reset()
            arguments = command.first
    if arguments is command.rerun:
        _finished(command, run_cli(command.rerun, scratch, env=command.env))
    return started

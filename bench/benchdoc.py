"""What every benchmark here shares: the machine's state, the copy-bandwidth yardstick, and
writing one ``## Section`` of ``docs/benchmarks.md`` (other sections are left untouched)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mlfer.core.fileio import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
INTRO = (
    "# Benchmarks\n\nSpeed and accuracy measured by the scripts in `bench/`; each table says which command wrote it.\n"
)


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` wall-clock timings of ``work()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def copy_seconds(nbytes: int, repeats: int = 5) -> float:
    """Best time of ``torch.Tensor.copy_`` between two float32 buffers of ``nbytes`` bytes each."""
    source = torch.ones(nbytes // 4)
    target = torch.empty_like(source)
    return best_seconds(lambda: target.copy_(source), repeats)


#: Environment variables that change the speed of torch on the CPU, recorded when set.
SPEED_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "THP_MEM_ALLOC_ENABLE")


def machine() -> str:
    """CPU, core count, torch threads, speed-related environment and the 1-minute load average."""
    cpu = platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), cpu)
    settings = "".join(f", {name}={os.environ[name]}" for name in SPEED_VARIABLES if name in os.environ)
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"
        f"{settings}, load average {os.getloadavg()[0]:.1f}"
    )


def _cpuinfo() -> list[str]:
    path = Path("/proc/cpuinfo")
    return path.read_text().splitlines() if path.is_file() else []


def command_line() -> str:
    """The command that ran this script, relative to the project root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def write_section(title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` of docs/benchmarks.md with ``body``, headed
    by the command that produced it and the machine it ran on."""
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else INTRO
    section = f"## {title}\n\nWritten by `{command_line()}` on {machine()}.\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    write_text_atomic(DOC, text)
    print(f"wrote section '{title}' of {DOC}")

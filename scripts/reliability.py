"""Run the fuzz, fault and disk-full tests with soak-sized case counts and write the reliability
tables of docs/reliability.md (between its ``reliability:start`` and ``reliability:end`` marks).

Each test appends one JSON line per case to a log (``tests/faults.py``: ``record``); this
script runs them under pytest with ``MLFER_SOAK=1`` (10 times the fuzz cases, 3 times the
kills, each kill on a fresh run followed by a rerun to the end) and counts the outcomes.

Usage: python scripts/reliability.py [--quick] [--doc FILE]

``--quick`` keeps the CI counts (a check of this script); the table says which was run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
#: The suites of tests/reliability/ (an empty list would make pytest run the whole suite).
TESTS = sorted(
    str(path.relative_to(ROOT))
    for pattern in ("test_fuzz_*.py", "test_faults_*.py", "test_disk_full.py")
    for path in (ROOT / "tests" / "reliability").glob(pattern)
)

#: What each fuzz target was fed (rows of the first table).
FUZZED = {
    "raf-basic": "RAF-DB label list `EmoLabel/list_patition_label.txt`",
    "raf-compound": "RAF-DB compound label list; one bad label (0, 12, -1, abc, 1.5, nan, empty) on a known line",
    "raf-ml": "RAF-ML distribution and partition files; one bad value (abc, nan, inf, -0.5, 1e999) on a known line",
    "jaffe": "JAFFE ratings file; one bad rating (abc, nan, inf, 1e999) at a known line and column",
    "csv": "CSV manifest; one bad 0/1 cell (2, abc, nan, -1, 0.5, yes) at a known line and column",
    "folder": "folder layouts: odd, hidden and unknown sub-folders, any suffix, nested folders, junk bytes",
    "features npz": "`features:` .npz: arrays of random shape and dtype (0-d to 3-d, bool, complex, text), "
    "NaN/inf/1e308, headers declaring 10^12 rows",
    "ldl mat": "LDL .mat (features + labels/raw_data): random shapes, NaN/inf, damaged bytes, 2^30 x 2^30 declared",
    "graph labels": "`mlfer graph --labels` .npy and .csv (with and without a header); values other than 0/1",
    "--set overrides": "`--set KEY=VALUE`: every setting, YAML oddities (dates, anchors, tags, 300-deep nesting, "
    ".nan, 1e400), random text",
    "config yaml": "a run's config.yaml, damaged, with impossible dates, deep nesting, .inf/.nan",
    "glove": "GloVe text and .gz: random vocabularies and dimensions; one bad value in a label word's vector",
    "read_image": "images of 7 formats x 8 modes x EXIF orientations, damaged; random bytes with every image "
    "suffix; PNG/BMP/GIF headers declaring 100000 x 100000; empty files; truncated real photos",
    "exif damage": "JPEG, WebP, TIFF and PNG pictures with a full EXIF block (orientation, text, Exif and GPS "
    "IFDs) whose EXIF bytes are set, bit-flipped, zeroed from a point, or whose count/offset fields are made huge "
    "(PNG's chunk CRC fixed so that the damage reaches the parser)",
    "extreme geometries": "pictures of 1 px to 65,535 px sides and aspect ratios up to 65,535 (PNG, JPEG) read "
    "through `mlfer predict` in a child of the fork server (an OpenCV abort counts as a crash)",
    "model folder sizes": "a model folder's `config.yaml` with sizes and counts set at random (negative, 0, not "
    "fitting the weights, 10^9, 2^63), layers added or removed; shapes in the weights header changed; each within "
    "1 s of CPU and 100 MB of memory",
    "checksums": "`model.safetensors` metadata without its SHA-256, with it damaged, renamed or another model's, or "
    "none, with and without damaged tensor data, trusted or not; `predict`, `evaluate`, `export` without a checksum",
    "model folder json": "a sealed model folder's `manifest.json`, `thresholds.json` or `framing.json` damaged, "
    "then loaded as it is or after `mlfer seal`",
    "undecodable names": "photos named with random bytes (invalid UTF-8, backslashes, quotes, newlines, controls) "
    "given to `mlfer predict` (CSV, JSON, JSONL, Parquet) and `mlfer align`; `printable` on random bytes",
    "expansion bombs": "YAML alias bombs (2-10 levels, in `--set` and `config.yaml`), zip bombs of 150-300 MB beside "
    "the arrays of an npz and a `.mat`, a GloVe .gz of one endless line, a PNG inflating to 196 Mpx; 100 MB of memory",
}
#: The faults injected into each command (rows of the second table).
KILLED = {
    "mlfer train": "SIGKILL at a random moment of `mlfer train` on a features npz (svml-rgcn, 30 epochs); "
    "rerun with `--resume`",
    "feature cache": "SIGKILL at a random moment of `mlfer train` on synthetic images (ResNet18), "
    "mostly while it builds the feature cache; rerun with `--resume`",
    "mlfer align": "SIGKILL at a random moment of `mlfer align --all-faces` on copies of the shared photos; rerun",
    "mlfer predict": "SIGKILL at a random moment of `mlfer predict --annotate` (CSV table, JPEG images); rerun",
}
#: Single faults (rows of the third table).
OTHER = {
    "NaN loss": "learning rate x 1e100 after epoch 1: the loss becomes NaN/inf",
    "inf loss": "a training feature of 3e38 (finite in float32): W_C f overflows",
    "NaN features": "NaN or infinity in a features npz",
    "damaged resume state": "`last/` tensors flipped, truncated or deleted, `state.json` truncated; `--resume`",
    "damaged model folder": "`model.safetensors` truncated, emptied or one bit flipped; `config.yaml` damaged; "
    "each in a sealed folder (its manifest) and in one without a manifest",
    "damaged cache entry": "a feature-cache entry with one bit flipped, or cut in half; `mlfer train` again",
    "mlfer graph: disk full": "`mlfer graph --out` on a 1 MiB tmpfs with 0 to 700 kB free",
    "mlfer predict: disk full": "`mlfer predict --out X.parquet --annotate` on a 1 MiB tmpfs with 0 to 700 kB free",
    "mlfer train: disk full": "`mlfer train --out` on a 1 MiB tmpfs with 0 to 700 kB free",
    "save_model: disk full": "`save_model` of a ResNet18 checkpoint on a 1 MiB tmpfs",
    "unwritable destinations": "`predict --out`/`--annotate`, `align`, `train`, `evaluate`, `export`, `graph` and "
    "`save_model` writing to a read-only file system, below a file, names too long, a folder or file in the way",
    "concurrent runs": "two `mlfer train --resume` on one folder started at random moments of each other (clear "
    "error: the second refused, 'in use by process N'); runs started after the holder was killed",
}


def run_tests(log: Path, soak: bool) -> tuple[int, float, str]:
    """Run the tests, logging to ``log``; (pytest exit status, seconds, its summary line)."""
    if not TESTS:
        raise SystemExit(f"no reliability suites found under {ROOT / 'tests' / 'reliability'}")
    environment = {**os.environ, "MLFER_RELIABILITY_LOG": str(log), "MLFER_SOAK": "1" if soak else "0"}
    start = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *TESTS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    print(finished.stdout[-6000:], finished.stderr[-3000:], sep="\n")
    summary = next((line for line in reversed(finished.stdout.splitlines()) if re.search(r"passed|failed", line)), "")
    return finished.returncode, time.monotonic() - start, summary.strip("= ")


def read_log(log: Path) -> dict[str, collections.Counter[str]]:
    """Outcome counts per target; clear errors split by whether they name a place in the file."""
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    if not log.is_file():
        return counts
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        outcome = entry["outcome"]
        if outcome == "clear error" and entry["detail"].startswith(("at a place", "whole file")):
            outcome += " (" + entry["detail"].split(":", 1)[0] + ")"
        counts[entry["target"]][outcome] += 1
        if "crashed scipy's reader" in entry["detail"]:
            counts[entry["target"]]["scipy crash caught"] += 1
        temporaries = re.match(r"(\d+) hidden temporaries", entry["detail"])
        if temporaries:  # left by earlier kills and still there: the most seen at once
            seen = counts[entry["target"]]
            seen["hidden temporaries"] = max(seen["hidden temporaries"], int(temporaries[1]))
    return counts


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fuzz_table(counts: dict[str, collections.Counter[str]]) -> str:
    rows = []
    for target, fed in FUZZED.items():
        seen = counts.get(target, collections.Counter())
        placed, whole = seen["clear error (at a place)"], seen["clear error (whole file)"]
        rows.append(
            [
                f"`{target}`",
                fed,
                sum(seen[key] for key in seen if key not in ("scipy crash caught",)),
                seen["correct result"],
                placed,
                whole,
                seen["crash"],
                seen["hang"],
                seen["error naming no file or setting"],
            ]
        )
    header = [
        "target",
        "inputs fuzzed",
        "cases",
        "correct result",
        "clear error: file and line/field/row",
        "clear error: file (whole-file problem)",
        "crash",
        "hang",
        "error naming no file or setting",
    ]
    return _table(header, rows)


def fault_table(counts: dict[str, collections.Counter[str]]) -> str:
    rows = []
    for target, fault in KILLED.items():
        seen = counts.get(target, collections.Counter())
        rows.append(
            [
                f"`{target}`",
                fault,
                seen["killed, outputs whole"] + seen["half-written output"],
                seen["finished before the kill"],
                seen["killed, outputs whole"],
                seen["half-written output"],
                seen["rerun completed"],
                seen["rerun failed"],
                seen["hang"],
                seen["hidden temporaries"],
            ]
        )
    header = [
        "command",
        "fault injected",
        "runs killed",
        "runs that ended before their kill",
        "outputs whole after the kill",
        "half-written output",
        "reruns run to the end",
        "reruns failed",
        "hang",
        "most hidden temporaries at once",
    ]
    return _table(header, rows)


def other_table(counts: dict[str, collections.Counter[str]]) -> str:
    rows = []
    for target, fault in OTHER.items():
        seen = counts.get(target, collections.Counter())
        errors = sum(value for key, value in seen.items() if key.startswith("clear error"))
        rows.append(
            [
                f"`{target}`",
                fault,
                sum(seen.values()),
                seen["correct result"],
                errors,
                seen["crash"],
                seen["half-written output"],
            ]
        )
    header = ["target", "fault", "cases", "correct result (it fitted)", "clear error", "crash", "half-written output"]
    return _table(header, rows)


def report(counts: dict[str, collections.Counter[str]], soak: bool, status: int, seconds: float, summary: str) -> str:
    """The generated part of docs/reliability.md."""
    caught = sum(seen["scipy crash caught"] for seen in counts.values())
    scipy = (
        f"scipy's MAT reader segfaulted on {caught} of the `ldl mat` cases; each time the forked reader of "
        "`mlfer.data.ldl` turned it into a clear error naming the file."
        if caught
        else "scipy's MAT reader did not segfault on these `ldl mat` cases (it does on about 1 in 200 random one-byte "
        "damages of a `.mat` file; see below)."
    )
    mode = "soak (`MLFER_SOAK=1`)" if soak else "CI counts (`--quick`)"
    return "\n\n".join(
        [
            f"Generated by `python scripts/reliability.py` ({mode}): {summary or 'no summary'}, pytest exit status "
            f"{status}, {seconds / 60:.0f} min on this 2-core machine.",
            "**Fuzzed inputs.** Every file target gets valid files damaged as described above (truncated, bytes "
            "flipped, bad tokens inserted or replacing a word, lines dropped or repeated, random bytes, empty), plus "
            "the cases named in its row. Each case is bounded to 10 s; native parsers run in a forked child.",
            fuzz_table(counts),
            scipy,
            "**Kills** (SIGKILL to the command and its workers; the outputs checked after every kill):",
            fault_table(counts),
            "**Numerical faults, damaged files, full disks:**",
            other_table(counts),
        ]
    )


def write_doc(doc: Path, generated: str) -> None:
    """Replace the text between the marks of ``doc`` with ``generated``."""
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{doc} lacks the marks {START} and {END}")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{generated}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI case counts instead of the soak")
    parser.add_argument("--doc", type=Path, default=DOC, help=f"document to update (default: {DOC.relative_to(ROOT)})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "outcomes.jsonl"
        status, seconds, summary = run_tests(log, soak=not args.quick)
        counts = read_log(log)
    write_doc(args.doc, report(counts, not args.quick, status, seconds, summary))
    print(f"wrote {args.doc}")
    return status


if __name__ == "__main__":
    sys.exit(main())

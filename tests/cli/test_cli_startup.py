"""Start-up: ``mlfer --help``, ``mlfer graph`` and ``import mlfer`` import no torch, torchvision,
MediaPipe or OpenCV (the command modules import their library code inside their handlers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HEAVY = ("torch", "torchvision", "mediapipe", "cv2")

#: Runs ``mlfer.cli.main`` on the arguments, then prints its status and the heavy modules loaded.
PROBE = f"""
import json, sys
from mlfer.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
print(json.dumps({{"status": status, "heavy": sorted(name for name in {HEAVY!r} if name in sys.modules)}}))
"""


def probe(code: str, *argv: str) -> tuple[dict, str]:
    """Run ``code`` in a fresh interpreter; its last stdout line as JSON, and the stdout before it."""
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    *printed, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed)


def test_help_imports_no_torch() -> None:
    outcome, printed = probe(PROBE, "--help")
    assert outcome == {"status": 0, "heavy": []}
    assert "graph" in printed and "predict" in printed


def test_graph_imports_no_torch(tmp_path: Path) -> None:
    labels = tmp_path / "labels.npy"
    np.save(labels, np.array([[1, 0, 0, 1, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1]]))
    out = tmp_path / "out"
    outcome, printed = probe(PROBE, "graph", "--labels", str(labels), "--t1", "0.15", "--t2", "0.4", "--out", str(out))
    assert outcome == {"status": 0, "heavy": []}
    assert "3 images" in printed and (out / "graph.json").is_file() and (out / "graph.png").is_file()


def test_the_probe_sees_what_a_handler_imports(tmp_path: Path) -> None:
    """The control: ``mlfer align`` starts MediaPipe and OpenCV in its handler, then refuses the missing folder."""
    outcome, _ = probe(PROBE, "align", str(tmp_path / "absent"), str(tmp_path / "aligned"))
    assert outcome == {"status": 2, "heavy": ["cv2", "mediapipe"]}


def test_import_mlfer_and_its_light_packages_imports_no_torch() -> None:
    code = (
        "import json, sys, mlfer, mlfer.data, mlfer.faces, mlfer.graph, mlfer.inference\n"
        f"print(json.dumps({{'heavy': sorted(name for name in {HEAVY!r} if name in sys.modules)}}))"
    )
    outcome, _ = probe(code)
    assert outcome == {"heavy": []}

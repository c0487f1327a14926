"""MediaPipe's C++ log lines stay off stderr unless asked for (``--verbose``, ``MLFER_VERBOSE=1``);
everything else written to stderr meanwhile still gets there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlfer.faces.quiet import VERBOSE_VARIABLE, filter_noise, library_output

#: What MediaPipe 0.10.21 writes when a face detection graph is made and starts.
LIBRARY_LINES = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"W0000 00:00:1796589676.377063   11594 inference_feedback_manager.cc:114] Feedback manager requires a "
    b"model with a single signature inference. Disabling support for feedback tensors.\n",
    b"I0000 00:00:1796589676.377063   11594 gl_context.cc:357] GL version: 3.2\n",
)
#: Pieces of those lines that must not reach a user's stderr.
MARKERS = ("XNNPACK", "absl::InitializeLog", "Feedback manager", "W0000", "I0000")


def test_filter_drops_the_library_lines_and_keeps_the_rest() -> None:
    kept = [
        b"E0000 00:00:1796589676.377063   11594 calculator_graph.cc:1] graph failed\n",
        b"mlfer predict: warning: something of mlfer's own\n",
        b"Traceback (most recent call last):\n",
    ]
    assert filter_noise(b"".join([*LIBRARY_LINES, *kept])) == b"".join(kept)


def test_held_window_passes_on_all_but_the_library_lines(capfd: pytest.CaptureFixture[str]) -> None:
    with library_output():
        for line in LIBRARY_LINES:
            os.write(2, line)
        os.write(2, b"E0000 00:00:1.0   1 x.cc:1] a real error\n")
        print("mlfer's own message", file=sys.stderr)
    err = capfd.readouterr().err
    assert not any(marker in err for marker in MARKERS)
    assert "a real error" in err and "mlfer's own message" in err


def test_held_window_is_reentrant_and_gives_fd_2_back(capfd: pytest.CaptureFixture[str]) -> None:
    with library_output():
        with library_output():
            os.write(2, LIBRARY_LINES[0])
        os.write(2, b"inner done\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "inner done\nafter\n"


def test_verbose_variable_lets_everything_through(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_VARIABLE, "1")
    with library_output():
        os.write(2, LIBRARY_LINES[0])
    assert "XNNPACK" in capfd.readouterr().err


def run_fresh(args: list[str], verbose: bool = False) -> subprocess.CompletedProcess[str]:
    """``args`` in a fresh interpreter (MediaPipe not yet loaded), stderr captured."""
    environment = {key: value for key, value in os.environ.items() if key != VERBOSE_VARIABLE}
    if verbose:
        environment[VERBOSE_VARIABLE] = "1"
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, env=environment, check=False
    )


@pytest.fixture
def photo(shared_data: Path) -> Path:
    pytest.importorskip("mediapipe.python.solutions", reason="face detection needs mediapipe")
    path = shared_data / "faces" / "single_face.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_predict_stderr_holds_no_library_lines(photo: Path, tmp_path: Path) -> None:
    command = ["-m", "mlfer", "predict", str(photo), "--out", str(tmp_path / "out.csv")]
    quiet = run_fresh(command)
    assert quiet.returncode == 0, quiet.stderr
    assert not [marker for marker in MARKERS if marker in quiet.stderr], quiet.stderr
    loud = run_fresh([*command, "--verbose"])
    assert loud.returncode == 0, loud.stderr
    assert "XNNPACK" in loud.stderr  # the switch works: the lines are MediaPipe's, not hidden elsewhere


def test_python_api_stderr_holds_no_library_lines(photo: Path) -> None:
    code = f"import mlfer; print(len(mlfer.Recognizer().predict([{str(photo)!r}])))"
    quiet = run_fresh(["-c", code])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "1"
    assert not [marker for marker in MARKERS if marker in quiet.stderr], quiet.stderr
    assert "XNNPACK" in run_fresh(["-c", code], verbose=True).stderr

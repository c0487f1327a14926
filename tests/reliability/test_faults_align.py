"""SIGKILL at random moments of ``mlfer align`` on copies of the shared photos: after each kill
every aligned face and the report are whole, and the rerun ends with the faces of an
uninterrupted run, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

from faults import SOAK, Command, is_temporary, kill_series, kills, run_cli


def test_align_killed_at_random_moments(tmp_path: Path, shared_data: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0-f1-su-ph.jpg", "45-m7-di-ph.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg"):
        shutil.copy(shared_data / "faces" / name, photos / name)
    reference = run_cli(["align", str(photos), str(tmp_path / "reference"), "--all-faces"], tmp_path / "scratch")
    reference.check_finished()
    out = tmp_path / "aligned"
    args = ["align", str(photos), str(out), "--all-faces"]
    kill_series(
        Command("mlfer align", args, args, [out]),
        reference.seconds,
        kills(10, soak=60),
        tmp_path / "scratch",
        seed=3,
        fresh=SOAK,
    )
    expected = {
        path.relative_to(tmp_path / "reference"): path.read_bytes()
        for path in (tmp_path / "reference").rglob("*")
        if path.is_file()
    }
    written = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert {name: data for name, data in written.items() if not is_temporary(name)} == expected

"""``mlfer serve``'s API against the real server process on a loopback port (conftest.py's ``server``)."""

from __future__ import annotations

import http.client
import json
import math
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serving import MAX_UPLOAD_MB, Server

from mlfer.core.errors import MlferError
from mlfer.core.version import __version__
from mlfer.data.images import read_image
from mlfer.inference.table import COLUMNS

PHOTOS = ("0-f1-su-ph.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg")


def test_health_names_the_model_and_version(server: Server) -> None:
    reply = server.client().get("/health")
    assert reply.status == 200
    assert reply.json() == {
        "status": "ok",
        "model": "ferplus-svml-rgcn",
        "head": "svml-rgcn",
        "backbone": "resnet18",
        "version": __version__,
    }


def test_predict_gives_the_rows_of_mlfer_predict(server: Server, shared_data: Path, tmp_path: Path) -> None:
    """Same columns and numbers as ``mlfer predict`` on the same files (a face, five faces, none)."""
    faces = shared_data / "faces"
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, "-m", "mlfer", "predict", *PHOTOS, "--out", str(out)],
        cwd=faces,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    expected = json.loads(out.read_text())
    uploads = [(name, (faces / name).read_bytes()) for name in PHOTOS]
    reply = server.client().predict(uploads)
    assert reply.status == 200, reply.body
    rows = reply.json()
    assert [list(row) for row in rows] == [list(COLUMNS)] * len(expected)
    assert len(rows) == 1 + 5 + 1
    for row, cli_row in zip(rows, expected):
        for column in COLUMNS:
            if isinstance(cli_row[column], float):  # the batch a face lands in may move the last digit
                assert math.isclose(row[column], cli_row[column], abs_tol=2e-6), (row["input"], column)
            else:
                assert row[column] == cli_row[column], (row["input"], column)


def test_a_raw_body_and_the_options_of_the_cli(server: Server, shared_data: Path) -> None:
    photo = ("0-f1-su-ph.jpg", (shared_data / "faces" / "0-f1-su-ph.jpg").read_bytes())
    (tuned,) = server.client().predict([photo], raw=True).json()
    (default,) = server.client().predict([photo], raw=True, thresholds="default").json()
    assert tuned["input"] == "0-f1-su-ph.jpg" and tuned["surprise"] == default["surprise"]
    assert tuned["predicted"] == "surprise" and default["predicted"] == "surprise"
    assert server.client().predict([photo], min_score=0.99).json()[0]["face_detected"] is False


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_requests_without_the_token_get_401(server: Server, path: str) -> None:
    for token in (None, "wrong"):
        reply = server.client(token).get(path)
        assert reply.status == 401
        assert "Bearer" in reply.json()["error"] and reply.headers["www-authenticate"].startswith("Bearer")
    assert server.client(None).predict([("a.jpg", b"x")]).status == 401


def test_the_page_needs_no_token(server: Server) -> None:
    page = server.client(None).get("/")
    assert page.status == 200 and b'<input id="file" type="file"' in page.body
    for name in ("page.js", "page.css"):
        assert server.client(None).get(f"/static/{name}").status == 200
    assert b"http" not in page.body.replace(b"http-equiv", b""), "the page must load nothing from outside"


def test_an_upload_over_the_cap_gets_413(server: Server) -> None:
    """Refused on its Content-Length alone, before the body is read."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        size = MAX_UPLOAD_MB * 2**20 + 1
        connection.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = json.loads(response.read())
    assert response.status == 413
    assert body == {"error": f"the upload is larger than this server accepts ({MAX_UPLOAD_MB} MiB)"}


def test_a_non_image_gets_422_with_the_readers_message(server: Server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with pytest.raises(MlferError) as raised:
        read_image(notes)
    expected = str(raised.value).replace(str(notes), "notes.txt")
    reply = server.client().predict([("notes.txt", notes.read_bytes())])
    assert reply.status == 422
    assert reply.json() == {"error": expected, "errors": [{"input": "notes.txt", "error": expected}]}
    assert expected.startswith("notes.txt: cannot read the image")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"thresholds": "best"}, 400, "unknown thresholds 'best'"),
        ({"min_score": "2"}, 400, "min_score: must lie in (0, 1]"),
        ({"min_score": "high"}, 400, "min_score: expected a number"),
    ],
)
def test_bad_options_get_400(server: Server, query: dict[str, str], status: int, message: str) -> None:
    reply = server.client().predict([("a.jpg", b"x")], **query)
    assert reply.status == status and message in reply.json()["error"]


def test_other_refusals_are_json(server: Server) -> None:
    client = server.client()
    assert client.predict([("clip.mp4", b"\x00" * 100)]).json()["error"].startswith("clip.mp4: videos are not served")
    assert client.request("POST", "/predict", b"").status == 400
    missing = client.get("/nowhere")
    assert missing.status == 404 and missing.json() == {"error": "Not Found"}
    assert client.get("/predict").status == 405


def test_metrics_count_requests_by_status(server: Server, shared_data: Path) -> None:
    client = server.client()
    client.predict([("0-f1-su-ph.jpg", (shared_data / "faces" / "0-f1-su-ph.jpg").read_bytes())])
    text = client.get("/metrics").body.decode()
    assert 'mlfer_serve_requests_total{endpoint="/predict",status="200"}' in text
    for name in ("mlfer_serve_request_seconds_bucket", "mlfer_serve_batch_faces_count", "mlfer_serve_queue_requests"):
        assert name in text

"""The Starlette application: ``/`` (the page), ``/health``, ``/predict``, ``/metrics``.

Every answer but the page's files needs the bearer token when the server has one
(:class:`~mlfer.serve.guards.BearerToken`); errors are JSON ``{"error": message}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlfer.serve.errors import RequestError
from mlfer.serve.guards import BearerToken, UploadLimit, UploadTooLargeError, too_large
from mlfer.serve.metrics import MetricsMiddleware, ServeMetrics
from mlfer.serve.service import PredictionService, Upload
from mlfer.serve.settings import ServeSettings

#: The page's files (HTML, script, style), served without the token.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The multipart field that carries the photos.
FILE_FIELD = "file"
ENDPOINTS = ("/", "/health", "/predict", "/metrics")


def is_page(path: str) -> bool:
    """The paths anyone may fetch: the page and its files (they hold no data)."""
    return path == "/" or path.startswith("/static/")


def create_app(settings: ServeSettings) -> Starlette:
    """Load the model and build the application (its threads stop when the app shuts down)."""
    metrics = ServeMetrics(ENDPOINTS)
    service = PredictionService(settings, metrics)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def health(request: Request) -> Response:
        return JSONResponse(service.describe())

    async def predict(request: Request) -> Response:
        options = service.options(dict(request.query_params))
        with service.admit():
            uploads = await read_uploads(request, settings.max_files)
            return JSONResponse(await service.predict(uploads, options))

    async def prometheus(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()

    middleware = [Middleware(MetricsMiddleware, metrics=metrics)]
    if settings.token is not None:
        middleware.append(Middleware(BearerToken, token=settings.token, is_open=is_page))
    middleware.append(Middleware(UploadLimit, limit=settings.max_upload_bytes))
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/health", health),
            Route("/predict", predict, methods=["POST"]),
            Route("/metrics", prometheus),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=middleware,
        exception_handlers={
            RequestError: lambda request, error: error.response(),
            UploadTooLargeError: lambda request, error: too_large(settings.max_upload_bytes).response(),
            HTTPException: lambda request, error: RequestError(error.status_code, error.detail).response(),
            ClientDisconnect: lambda request, error: RequestError(
                400, "the client left before its upload ended"
            ).response(),
        },
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def app_from_environment() -> Starlette:
    """The application of one worker process, from the settings ``mlfer serve`` left in its environment."""
    return create_app(ServeSettings.from_environment())


async def read_uploads(request: Request, max_files: int) -> list[Upload]:
    """The photos of a request: the multipart field ``file`` (one or more), or the raw body
    (named by the ``name`` query option, else ``upload``).

    Raises:
        RequestError: 400 when there is no photo.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=max_files) as form:
            files = [item for item in form.getlist(FILE_FIELD) if not isinstance(item, str)]
            uploads = [Upload(item.filename or "upload", await item.read()) for item in files]
    else:
        body = await request.body()
        uploads = [Upload(request.query_params.get("name", "upload"), body)] if body else []
    if not uploads:
        raise RequestError(
            400, f"no photo: send it as the multipart field {FILE_FIELD!r} (one or more files) or as the raw body"
        )
    return uploads

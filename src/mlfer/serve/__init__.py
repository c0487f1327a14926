"""``mlfer serve``: an HTTP API and a web page over :class:`~mlfer.inference.recognizer.Recognizer`.

Starlette answers the requests and uvicorn runs them (:mod:`mlfer.serve.server`); each request's
photos are read and their faces detected and aligned in worker threads (:mod:`mlfer.serve.service`),
and one batcher thread classifies the faces of concurrent requests together
(:mod:`mlfer.serve.batcher`). The page (``static/``) needs nothing from outside the server.
"""

"""The webhook benchmark's baseline: the least a WSGI app under gunicorn does with a POST.

gunicorn serves it in the webhook's exact shape, so the webhook's figures beside this
app's show what verifying, parsing and publishing a callback cost on top of gunicorn and
HTTP, measured on the same machine in the same minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Read the whole body, as the webhook must to verify it, and answer 204 as it does."""
    environ["wsgi.input"].read()
    start_response("204 No Content", [])
    return []

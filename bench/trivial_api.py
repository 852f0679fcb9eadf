"""The API benchmark's baseline: the least a WSGI app under gunicorn does with a JSON POST.

gunicorn serves it in the API's exact shape, so the API's figures beside this app's show
what the key check, validation, storing, publishing and the answer cost on top of gunicorn
and HTTP, measured on the same machine in the same minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

# A job's id and status: about the smallest answer a client of POST /v1/calls could use.
ANSWER = b'{"id": "00000000000000000000000000000000", "status": "queued"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Read the whole JSON body, as the API must to parse it, and answer 201 as it does."""
    environ["wsgi.input"].read()
    start_response("201 Created", HEADERS)
    return [ANSWER]

"""HTTP: Twilio's REST paths, and the control API under /_sim/."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.engine import ApiError, Engine
from simulator.media import MEDIA
from simulator.records import Faults
from simulator.resources import API_VERSION, error_body
from simulator.scenario import Scenario

log = logging.getLogger(__name__)
ENGINE = web.AppKey("engine", Engine)
CALLS = f"/{API_VERSION}/Accounts/{{account}}/Calls.json"
CALL = f"/{API_VERSION}/Accounts/{{account}}/Calls/{{sid}}.json"
CALL_RECORDINGS = f"/{API_VERSION}/Accounts/{{account}}/Calls/{{call}}/Recordings.json"
CALL_RECORDING = f"/{API_VERSION}/Accounts/{{account}}/Calls/{{call}}/Recordings/{{sid}}.json"
RECORDINGS = f"/{API_VERSION}/Accounts/{{account}}/Recordings.json"
# One route for the resource (.json) and its media (.wav, .mp3, or no extension: WAV).
RECORDING = (f"/{API_VERSION}/Accounts/{{account}}/Recordings/"
             r"{sid:RE[0-9a-fA-F]{32}}{ext:(\.json|\.wav|\.mp3)?}")
APPLICATIONS = f"/{API_VERSION}/Accounts/{{account}}/Applications.json"
APPLICATION = f"/{API_VERSION}/Accounts/{{account}}/Applications/{{sid}}.json"
KINDS = ("status", "recording", "amd")
CONTROL = "/_sim"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def twilio_error(code: int, message: str, status: int) -> web.Response:
    return web.json_response(error_body(code, message, status), status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure answers in Twilio's error shape; nothing leaks a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body, status=exc.status)
    except web.HTTPMethodNotAllowed:
        return twilio_error(20004, f"Method {request.method} not allowed", 405)
    except web.HTTPNotFound:
        return twilio_error(20404, f"The requested resource {request.path} was not found", 404)
    except web.HTTPException as exc:
        return twilio_error(20001, exc.reason, exc.status)
    except Exception:
        log.exception("simulator failed on %s %s", request.method, request.path)
        return twilio_error(20500, "Internal Server Error", 500)


@web.middleware
async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(CONTROL + "/"):
        return await handler(request)
    engine = request.app[ENGINE]
    if not _authorized(request.headers.get("Authorization", ""), engine):
        response = twilio_error(20003, "Authenticate", 401)
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    account = request.match_info.get("account")
    if account is not None and account != engine.account_sid:
        return twilio_error(20404, f"The requested resource {request.path} was not found", 404)
    return await handler(request)


def _authorized(header: str, engine: Engine) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (hmac.compare_digest(user, engine.account_sid)
            and hmac.compare_digest(password, engine.auth_token))


async def _form(request: web.Request) -> dict[str, list[str]]:
    try:
        posted = await request.post()
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(20001, f"Malformed request body: {exc}", 400) from None
    form: dict[str, list[str]] = {}
    for key, value in posted.items():
        if not isinstance(value, str):
            raise ApiError(20001, f"Parameter {key} must be text", 400)
        form.setdefault(key, []).append(value)
    return form


async def create_call(request: web.Request) -> web.Response:
    status, body = await request.app[ENGINE].create(await _form(request))
    return web.json_response(body, status=status)


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].list_calls(request.query, request.path))


async def fetch_call(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].fetch(request.match_info["sid"]))


async def update_call(request: web.Request) -> web.Response:
    form = await _form(request)
    return web.json_response(request.app[ENGINE].update(request.match_info["sid"], form))


async def delete_call(request: web.Request) -> web.Response:
    request.app[ENGINE].delete(request.match_info["sid"])
    return web.Response(status=204)


async def list_recordings(request: web.Request) -> web.Response:
    call = request.match_info.get("call")
    return web.json_response(request.app[ENGINE].list_recordings(request.query, request.path,
                                                                 call))


async def fetch_call_recording(request: web.Request) -> web.Response:
    engine, info = request.app[ENGINE], request.match_info
    engine.fetch(info["call"])
    return web.json_response(engine.recording(info["sid"], info["call"]).to_json())


async def fetch_recording(request: web.Request) -> web.Response:
    """The resource as JSON, or its media: a short silence (see simulator.media)."""
    recording = request.app[ENGINE].recording(request.match_info["sid"])
    ext = request.match_info["ext"]
    if ext == ".json":
        return web.json_response(recording.to_json())
    content_type, make = MEDIA[ext]
    return web.Response(body=make(), content_type=content_type)


async def create_application(request: web.Request) -> web.Response:
    body = request.app[ENGINE].application_request("create", await _form(request))
    return web.json_response(body, status=201)


async def list_applications(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].application_request(
        "list", {}, query=request.query, path=request.path))


async def fetch_application(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].application_request(
        "fetch", {}, sid=request.match_info["sid"]))


async def update_application(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].application_request(
        "update", await _form(request), sid=request.match_info["sid"]))


async def delete_application(request: web.Request) -> web.Response:
    request.app[ENGINE].application_request("delete", {}, sid=request.match_info["sid"])
    return web.Response(status=204)


# --- control ---------------------------------------------------------------------------

async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        raise ApiError(20001, "Control requests take a JSON object", 400) from None
    if not isinstance(body, dict):
        raise ApiError(20001, "Control requests take a JSON object", 400)
    return body


def _control(change: Callable[[Engine, dict[str, Any]], None]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        engine = request.app[ENGINE]
        try:
            change(engine, await _json(request))
        except (TypeError, ValueError) as exc:
            raise ApiError(20001, str(exc), 400) from None
        return web.json_response(state(engine))
    return handle


def state(engine: Engine) -> dict[str, Any]:
    return {"account_sid": engine.account_sid, "cps": engine.cps, "strict": engine.strict,
            "time_scale": engine.time_scale, "calls": len(engine.calls)}


def _set_scenario(engine: Engine, body: dict[str, Any]) -> None:
    engine.scenario = Scenario(body.get("rules") or {}, body.get("default", "answered"))


def _set_faults(engine: Engine, body: dict[str, Any]) -> None:
    engine.faults = Faults(**body)


def _configure(engine: Engine, body: dict[str, Any]) -> None:
    engine.configure(**body)


async def control_reset(request: web.Request) -> web.Response:
    await request.app[ENGINE].reset()
    return web.json_response(state(request.app[ENGINE]))


async def control_state(request: web.Request) -> web.Response:
    return web.json_response(state(request.app[ENGINE]))


async def control_creates(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    with engine.lock:
        return web.json_response([r.to_json() for r in engine.create_log])


async def control_callbacks(request: web.Request) -> web.Response:
    """Status callbacks; `?kind=recording` or `?kind=amd` for the others."""
    kind = request.query.get("kind", "status")
    if kind not in KINDS:
        raise ApiError(20001, f"kind must be one of {', '.join(KINDS)}, not {kind!r}", 400)
    engine = request.app[ENGINE]
    with engine.lock:
        return web.json_response([r.to_json() for r in engine.callback_log if r.kind == kind])


async def control_instructions(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].instructions(request.match_info["sid"]))


async def control_calls(request: web.Request) -> web.Response:
    return web.json_response([c.to_json() for c in request.app[ENGINE].calls.values()])


def make_app(engine: Engine) -> web.Application:
    app = web.Application(middlewares=[errors, basic_auth])
    app[ENGINE] = engine
    app.router.add_post(CALLS, create_call)
    app.router.add_get(CALLS, list_calls, allow_head=False)
    app.router.add_get(CALL, fetch_call, allow_head=False)
    app.router.add_post(CALL, update_call)
    app.router.add_delete(CALL, delete_call)
    app.router.add_get(CALL_RECORDINGS, list_recordings, allow_head=False)
    app.router.add_get(CALL_RECORDING, fetch_call_recording, allow_head=False)
    app.router.add_get(RECORDINGS, list_recordings, allow_head=False)
    app.router.add_get(RECORDING, fetch_recording, allow_head=False)
    app.router.add_post(APPLICATIONS, create_application)
    app.router.add_get(APPLICATIONS, list_applications, allow_head=False)
    app.router.add_get(APPLICATION, fetch_application, allow_head=False)
    app.router.add_post(APPLICATION, update_application)
    app.router.add_delete(APPLICATION, delete_application)
    app.router.add_get(CONTROL + "/state", control_state)
    app.router.add_post(CONTROL + "/scenario", _control(_set_scenario))
    app.router.add_post(CONTROL + "/faults", _control(_set_faults))
    app.router.add_post(CONTROL + "/config", _control(_configure))
    app.router.add_post(CONTROL + "/reset", control_reset)
    app.router.add_get(CONTROL + "/creates", control_creates)
    app.router.add_get(CONTROL + "/calls", control_calls)
    app.router.add_get(CONTROL + "/callbacks", control_callbacks)
    app.router.add_get(CONTROL + "/calls/{sid}/instructions", control_instructions)
    app.on_cleanup.append(lambda app: app[ENGINE].close())
    return app

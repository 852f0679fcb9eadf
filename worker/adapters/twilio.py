"""The one place that talks to Twilio's REST API."""

from __future__ import annotations

import functools
import logging
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance

from worker.settings import Settings

log = logging.getLogger(__name__)
# twilio's HTTP client logs request parameters (phone numbers) at INFO.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def make_client(settings: Settings) -> Client:
    account_sid, auth_token = settings.require_twilio()
    # `environment` must be a non-empty mapping: Client falls back to os.environ on
    # an empty one, and TWILIO_EDGE / TWILIO_REGION there would rewrite the host.
    client = Client(
        account_sid,
        auth_token,
        http_client=_http_client(settings),
        environment={"TWILIO_ACCOUNT_SID": account_sid},
    )
    client.api.base_url = settings.twilio_api_base_url
    return client


def _http_client(settings: Settings) -> TwilioHttpClient:
    """twilio's HTTP client, whose session takes the environment's proxy and CA bundle
    settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...) once, for the API's base URL.

    requests looks them up in os.environ on every request otherwise: about a tenth of a
    create's CPU in the worker. Every request of this client goes to that one host, so
    what the lookup finds is the same each time.
    """
    http = TwilioHttpClient(timeout=settings.twilio_timeout)
    session = http.session
    if session is not None:
        found = session.merge_environment_settings(settings.twilio_api_base_url, {}, None,
                                                   None, None)
        session.proxies.update(found["proxies"])
        session.verify = found["verify"]
        session.trust_env = False
    return http


class TwilioCalls:
    """Twilio's Calls resource, and the media of a call's recordings. The client is made on
    first use: a producer that never dials needs no Twilio credentials."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._warm = False

    @functools.cached_property
    def client(self) -> Client:
        return make_client(self._settings)

    def warm(self) -> None:
        """The process's first request to Twilio's API, once, if no create went before.

        A process's first request spends 10-30 ms more in requests and the connection's
        setup (TLS in production) than the next ones do. Made by the first create, that
        time passes after the pacer's departure gate, so it arrives closer than 1/cps to
        the punctual create behind it; made here, before the gate, it costs no spacing.
        Any answer will do, and a failure is the create's to report."""
        if self._warm:
            return
        self._warm = True
        try:
            self.client.calls  # noqa: B018 (twilio builds the resource's objects on first use)
            self.client.request("GET", self._settings.twilio_api_base_url,
                                timeout=self._settings.twilio_timeout)
        except requests.RequestException as exc:
            log.info("warming the connection to Twilio failed: %s", exc)

    def create_call(self, params: dict[str, Any]) -> CallInstance:
        """One create, no retry: the caller decides what a failure means."""
        self._warm = True
        return self.client.calls.create(**params)

    def fetch_call(self, call_sid: str) -> CallInstance:
        return self.client.calls(call_sid).fetch()

    def end_call(self, call_sid: str, status: str) -> CallInstance:
        """`canceled` ends a queued or ringing call; `completed` hangs up an answered one."""
        return self.client.calls(call_sid).update(status=status)

    def redirect_call(self, call_sid: str, params: dict[str, str]) -> CallInstance:
        """New instructions (url and method, or twiml) for a live call, which goes on."""
        return self.client.calls(call_sid).update(**params)

    def list_calls(self, to: str, from_: str, limit: int) -> list[CallInstance]:
        return self.client.calls.list(to=to, from_=from_, limit=limit)

    def download_recording(self, recording_sid: str) -> bytes:
        """The recording's media as WAV; a TwilioRestException when Twilio refuses.

        twilio's client reads every answer as text, which would mangle audio, so the media
        is fetched with requests, authenticated as the client is (the account's SID and
        token), from the same API base. Twilio may redirect to where the media is stored;
        requests drops the credentials on a redirect to another host.
        """
        account_sid, auth_token = self._settings.require_twilio()
        url = (f"{self._settings.twilio_api_base_url}/2010-04-01/Accounts/{account_sid}"
               f"/Recordings/{recording_sid}.wav")
        response = requests.get(url, auth=(account_sid, auth_token),
                                timeout=self._settings.twilio_timeout)
        if not response.ok:
            raise _rest_error(response)
        return response.content


def _rest_error(response: requests.Response) -> TwilioRestException:
    """Twilio's JSON error (code and message) as the client would raise it."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message") or response.reason or f"HTTP {response.status_code}"
    return TwilioRestException(status=response.status_code, uri=response.url, msg=message,
                               code=body.get("code"), method="GET")

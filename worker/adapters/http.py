"""POSTing result notifications to producers' URLs."""

from __future__ import annotations

import requests
import urllib3
from urllib3.util import parse_url


class PooledNotifier:
    """urllib3 connection pools, made on first use in each process (a prefork child POSTs
    on its own connections), so connections to a receiver are reused between events.

    urllib3 directly, not requests: requests looks the proxy and CA settings up in the
    environment on every request, which costs more than the rest of its POST. They are looked
    up once per receiver's origin instead, with requests' own rules (HTTP(S)_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE, certifi's bundle by default), so a receiver is reached as requests
    reaches it. Redirects are not followed: a signed event goes only where it was sent.
    """

    def __init__(self) -> None:
        # One pool manager per (proxy, CA bundle), and which one serves each origin.
        self._managers: dict[tuple[str | None, str], urllib3.PoolManager] = {}
        self._origins: dict[tuple[str | None, str | None, int | None],
                            urllib3.PoolManager] = {}

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = parse_url(url)
        origin = (parts.scheme, parts.host, parts.port)
        manager = self._origins.get(origin)
        if manager is None:
            with requests.Session() as session:
                found = session.merge_environment_settings(url, {}, None, None, None)
            proxy = found["proxies"].get(parts.scheme or "")
            verify = found["verify"]
            ca_certs = verify if isinstance(verify, str) else requests.certs.where()
            key = (proxy, ca_certs)
            manager = self._managers.get(key)
            if manager is None:
                manager = (urllib3.PoolManager(ca_certs=ca_certs) if proxy is None
                           else urllib3.ProxyManager(proxy, ca_certs=ca_certs))
                self._managers[key] = manager
            self._origins[origin] = manager
        return manager

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        response = self._manager(url).request(
            "POST", url, body=body, headers=headers, timeout=timeout, redirect=False,
            retries=False)
        return response.status

"""POSTing result notifications to producers' URLs."""

from __future__ import annotations

import requests


class RequestsNotifier:
    """One requests.Session per process: connections to a receiver are reused between
    events. Redirects are not followed: a signed event goes only where it was sent."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        if self._session is None:
            self._session = requests.Session()
        response = self._session.post(url, data=body, headers=headers, timeout=timeout,
                                      allow_redirects=False)
        response.close()
        return response.status_code

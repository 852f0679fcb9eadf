"""The account's Applications resource: create, fetch, list, update, delete. No I/O."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from simulator.create_rules import CreateError, check_application
from simulator.resources import Application, account_base, page


class Applications:
    def __init__(self, account_sid: str, rng: random.Random) -> None:
        self.account_sid = account_sid
        self.rng = rng
        self.items: dict[str, Application] = {}

    def _not_found(self, sid: str) -> CreateError:
        return CreateError(20404, f"The requested resource {account_base(self.account_sid)}"
                           f"/Applications/{sid}.json was not found", 404)

    def get(self, sid: str) -> Application:
        application = self.items.get(sid)
        if application is None:
            raise self._not_found(sid)
        return application

    def create(self, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        check_application(form)
        sid = f"AP{self.rng.getrandbits(128):032x}"
        application = Application(sid, self.account_sid, Application.defaults())
        application.apply({k: list(v) for k, v in form.items()})
        self.items[sid] = application
        return application.to_json()

    def update(self, sid: str, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        application = self.get(sid)
        check_application(form)
        application.apply({k: list(v) for k, v in form.items()})
        return application.to_json()

    def delete(self, sid: str) -> None:
        self.get(sid)
        del self.items[sid]

    def list(self, query: Mapping[str, str], path: str, page_number: int,
             page_size: int) -> dict[str, Any]:
        chosen = sorted(self.items.values(), key=lambda a: a.created_at, reverse=True)
        if "FriendlyName" in query:
            chosen = [a for a in chosen if a.fields["friendly_name"] == query["FriendlyName"]]
        filters = {k: v for k, v in query.items() if k == "FriendlyName"}
        return page([a.to_json() for a in chosen], "applications", path, page_number,
                    page_size, filters)

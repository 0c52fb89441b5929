"""Schemathesis against the service's own OpenAPI spec, in process, as a trader, on SQLite.

Every generated request must get a documented status code (never a 5xx) and a response that
matches its documented schema; no order may be written unless its request got a 201.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ordex.api.app import create_app
from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.store.uow import reading

BASE_URL = "http://testserver"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          content_type_conformance]


def openapi_document() -> dict[str, Any]:
    """The spec, from an app that is never started (nothing connects, migrates or seeds)."""
    with tempfile.TemporaryDirectory() as tmp:
        document: dict[str, Any] = create_app(Settings(data_dir=Path(tmp),
                                                       seed_demo=False)).openapi()
    return document


# Loaded at import: schemathesis' lazy `from_fixture` loader does not work with pytest 9.
schema = schemathesis.openapi.from_dict(openapi_document())


@dataclass
class Served:
    """The app on its own event loop (a thread), reached from the synchronous generated tests."""

    portal: BlockingPortal
    client: httpx.AsyncClient
    services: Services
    headers: dict[str, str]
    created: int = 0  # 201s answered to POST /v1/orders
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def request(self, **kwargs: Any) -> httpx.Response:
        return self.portal.call(partial(self.client.request, **kwargs))

    def order_count(self) -> int:
        async def count() -> int:
            async with reading(self.services.db) as repo:
                return await repo.count_orders()

        return self.portal.call(count)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A generous rate limit, so that the parser and the order rules answer, not the limiter.
    config = Settings(data_dir=tmp_path_factory.mktemp("schemathesis") / "data",
                      seed_demo=False, rate_limit_per_minute=100_000)
    services = build(config)
    app = create_app(config, services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with start_blocking_portal() as portal:
        portal.call(prepare, services)
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        try:
            issued = portal.call(partial(services.accounts.create, "fuzzer", Role.TRADER,
                                         Decimal("1000000")))
            yield Served(portal, client, services,
                         {"Authorization": f"Bearer {issued.api_key}"})
        finally:
            portal.call(client.aclose)
            portal.call(services.close)


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis serializes for `requests`; the client here is `httpx`."""
    sent = {k: kwargs[k] for k in ("method", "url", "headers", "params") if kwargs.get(k)}
    if "headers" in sent:  # as HTTP sends them: latin-1 bytes (httpx encodes a str as ASCII)
        sent["headers"] = {k: v.encode("latin-1") if isinstance(v, str) else v
                           for k, v in sent["headers"].items()}
    if "json" in kwargs:
        sent["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        sent["content"] = kwargs["data"]
    unexpected = set(kwargs) - {"method", "url", "headers", "params", "json", "data", "cookies"}
    assert not unexpected and not kwargs.get("cookies"), kwargs
    return sent


@schema.parametrize()
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
def test_api_keeps_its_own_spec(case: Any, served: Served) -> None:
    before = served.order_count()
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=served.headers)
    response = served.request(**httpx_kwargs(kwargs))
    submitted = (response.status_code == 201 and (case.method, case.path) == ("POST", "/v1/orders")
                 and "idempotent-replayed" not in response.headers)
    served.created += submitted
    served.answers[case.method, case.path, response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
    written = served.order_count() - before
    assert written == submitted, (f"{case.method} {case.path} answered {response.status_code} "
                                  f"and {written} order(s) were written")


def test_no_order_without_a_201(served: Served) -> None:
    """Runs after the generated cases: every order in the store was answered with a 201."""
    assert served.order_count() <= served.created
    # The trader's key was used: some submissions got past authentication to the parser.
    assert any(method == "POST" and path == "/v1/orders" and status not in (401, 403)
               for method, path, status in served.answers), served.answers

"""An Idempotency-Key outlives the process: ``ordex serve`` stopped (or killed with SIGKILL) and
started again on the same data dir answers a repeated keyed request with its first answer, and
does not carry it out twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port
from tests.support.serve import ordex_serve

# a limit buy below the market: it rests, so that the order stays the same between the runs
ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "180.00", "time_in_force": "gtc"}


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_keyed_submit_and_cancel_sent_again_after_a_restart_get_their_first_answers(
        tmp_path: Path, stop: str) -> None:
    """Before the fix the keys lived in memory only: the repeated submit made a second order
    (the client never learnt the first one's id), and the repeated cancel was a 409."""
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    with ordex_serve(data, port) as (proc, keys), httpx.Client(base_url=url, timeout=10) as c:
        alice = {"Authorization": f"Bearer {keys['alice']}"}
        first = c.post("/v1/orders", json=ORDER, headers={**alice, "Idempotency-Key": "buy-1"})
        assert first.status_code == 201, first.text
        other = c.post("/v1/orders", json=ORDER, headers=alice).json()
        cancelled = c.delete(f"/v1/orders/{other['id']}",
                             headers={**alice, "Idempotency-Key": "cancel-1"})
        assert cancelled.status_code == 200, cancelled.text
        if stop == "sigkill":
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    with ordex_serve(data, port) as (_, keys), httpx.Client(base_url=url, timeout=10) as c:
        alice = {"Authorization": f"Bearer {keys['alice']}"}
        again = c.post("/v1/orders", json=ORDER, headers={**alice, "Idempotency-Key": "buy-1"})
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        reused = c.post("/v1/orders", json={**ORDER, "quantity": "11"},
                        headers={**alice, "Idempotency-Key": "buy-1"})
        assert reused.status_code == 422, reused.text
        error = reused.json()["errors"][0]
        assert (error["code"], error["field"]) == ("idempotency_key_reused", "Idempotency-Key")
        listed = c.get("/v1/orders", headers=alice).json()["orders"]
        assert sorted(o["id"] for o in listed) == sorted([first.json()["id"], other["id"]])

        cancel_again = c.delete(f"/v1/orders/{other['id']}",
                                headers={**alice, "Idempotency-Key": "cancel-1"})
        assert cancel_again.status_code == 200, cancel_again.text
        assert cancel_again.json() == cancelled.json()
        assert cancel_again.headers["idempotent-replayed"] == "true"

"""An API process with its cap of requests in flight turns the next one away at once with 503
`server-busy` and Retry-After (a phone retries it), while the health probes still answer."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from backend.core.overload import InFlightLimit


def test_requests_over_the_cap_are_told_to_retry_and_probes_still_answer() -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=InFlightLimit(app, limit=1))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            slow = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)  # the slow request is in flight
            busy = await client.get("/api/v1/sync/pull", headers={"Accept-Language": "en"})
            probe = await client.get("/readyz")
            release.set()
            first = await slow
            after = await client.get("/api/v1/sync/pull")
        return first, busy, probe, after

    first, busy, probe, after = asyncio.run(scenario())
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.json()["code"] == "server-busy"
    assert probe.status_code == 200
    assert first.status_code == 200 and after.status_code == 200

"""Requests released at the same moment, each from its own HTTP client (the race tests' one harness)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi.testclient import TestClient
from httpx import Response

from backend.main import create_app


def together(*calls: Callable[[TestClient], Response]) -> list[Response]:
    """Each call from its own HTTP client, released at the same moment; the answers in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        with TestClient(create_app()) as own:
            barrier.wait()
            answers[i] = calls[i](own)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]

"""Timing for the benches: the median of a few runs, and the workbench's pages over an HTTP client."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


def median_ms(action: Callable[[], object], runs: int) -> float:
    """The median of ``runs`` calls of ``action``, in milliseconds."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def log_in(client: httpx.Client, username: str, password: str) -> None:
    """Log in to the workbench through its form, as a clerk would."""
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def page(client: httpx.Client, path: str) -> Callable[[], None]:
    """A GET of ``path`` that must answer 200 (a timing of an error page would mean nothing)."""

    def get() -> None:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)

    return get

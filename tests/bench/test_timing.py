"""The benches' timing helpers: every run is timed, and a page that fails is not timed as if it answered."""

from __future__ import annotations

import httpx
import pytest

from bench.timing import log_in, median_ms, page


def _client(answers: dict[str, httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.get(request.url.path, httpx.Response(404))

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://bench")


def test_median_ms_runs_the_action_once_a_run() -> None:
    calls: list[int] = []

    figure = median_ms(lambda: calls.append(1), 5)

    assert len(calls) == 5
    assert figure >= 0


def test_a_page_that_does_not_answer_200_stops_the_bench() -> None:
    seen: list[httpx.Request] = []
    client = _client({"/": httpx.Response(200, text="ok")}, seen)

    page(client, "/")()
    with pytest.raises(AssertionError, match="/missing"):
        page(client, "/missing")()


def test_log_in_posts_the_form_with_the_login_pages_csrf_token() -> None:
    seen: list[httpx.Request] = []
    form = '<form><input type="hidden" name="csrf_token" value="tok-123"></form>'
    client = _client({"/login": httpx.Response(200, text=form)}, seen)

    log_in(client, "bench", "bench-password-1")

    posted = seen[-1]
    assert posted.method == "POST"
    assert posted.content.decode() == "username=bench&password=bench-password-1&csrf_token=tok-123"

"""Graceful shutdown (issue 8): SIGTERM / SIGINT drain the gateway.

While draining, readiness says so (503), new API requests get a fast 503 with
Retry-After, in-flight requests and streams run to their end; whatever is still
running at `drain_timeout` is ended with an error (an SSE error event for a
stream, an OpenAI-shaped 503 for a request whose response had not started) and
the process exits 0. A second signal skips the wait.
"""
from __future__ import annotations

import signal
import threading
import time

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, wait_for


class StreamReader(threading.Thread):
    """Reads one streamed completion with the official SDK in the background."""

    def __init__(self, gw, model: str):
        super().__init__(daemon=True)
        self.gw, self.model = gw, model
        self.started = threading.Event()
        self.text = ""
        self.error: Exception | None = None
        self.finish_reason = None
        self.start()

    def run(self):
        client = self.gw.client(timeout=60)
        try:
            for chunk in client.chat.completions.create(model=self.model, messages=USER_HI, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    self.text += chunk.choices[0].delta.content
                    self.started.set()
                if chunk.choices and chunk.choices[0].finish_reason:
                    self.finish_reason = chunk.choices[0].finish_reason
        except Exception as e:  # noqa: BLE001 - recorded for the test to inspect
            self.error = e
        finally:
            self.started.set()
            client.close()


class PlainRequest(threading.Thread):
    """One non-stream request with raw httpx (the test looks at status and headers)."""

    def __init__(self, gw, model: str):
        super().__init__(daemon=True)
        self.gw, self.model = gw, model
        self.response: httpx.Response | None = None
        self.start()

    def run(self):
        self.response = httpx.post(self.gw.base_url + "/chat/completions",
                                   json={"model": self.model, "messages": USER_HI}, timeout=60)


def start_gateway(stack, drain_timeout: str):
    # 10 words 150 ms apart: a stream lasts about 1.5 s.
    streamer = stack.mock("streamer", "--ttft", "10ms", "--chunks", "10", "--chunk-delay", "150ms")
    stall = stack.mock("stall", "--stall")
    cfg = make_config([deployment("talk", streamer), deployment("stuck", stall)],
                      general_settings={"drain_timeout": drain_timeout, "overload_retry_after": 5})
    return stack.gateway(cfg), streamer, stall


def assert_exits_zero(gw, within: float):
    try:
        rc = gw.proc.p.wait(timeout=within)
    except Exception:
        pytest.fail(f"gateway still running {within}s after the drain should have ended; log:\n{gw.log_text()[-3000:]}")
    assert rc == 0, gw.log_text()[-3000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_streams_finish_while_new_work_is_refused(stack, sig):
    gw, streamer, _ = start_gateway(stack, drain_timeout="20s")
    readers = [StreamReader(gw, "talk") for _ in range(2)]
    for r in readers:
        assert r.started.wait(10), "stream did not start"
    assert readers[0].error is None and readers[1].error is None

    gw.proc.p.send_signal(sig)
    # Readiness turns to "draining" on a fresh connection (the listener stays up).
    r = wait_for(lambda: (x := httpx.get(gw.url + "/health/readiness", timeout=5)).status_code == 503 and x,
                 timeout=5, what="readiness 503")
    assert r.json()["status"] == "draining"
    assert httpx.get(gw.url + "/health/liveliness", timeout=5).status_code == 200
    # New API work is refused at once, OpenAI-shaped, with Retry-After, closing the connection.
    refused = httpx.post(gw.base_url + "/chat/completions", json={"model": "talk", "messages": USER_HI}, timeout=5)
    err = assert_openai_error_shape(refused, 503)
    assert err["code"] == "gateway_draining", err
    assert refused.headers["retry-after"] == "5" and refused.headers.get("connection", "").lower() == "close", refused.headers
    metrics = httpx.get(gw.url + "/metrics", timeout=5).text
    assert 'tailgate_requests_rejected_total{reason="draining"} 1' in metrics

    for r in readers:
        r.join(15)
        assert not r.is_alive()
        assert r.error is None, r.error
        assert r.finish_reason == "stop" and r.text.split() == [f"streamer-{i}" for i in range(10)], r.text
    assert_exits_zero(gw, within=10)
    assert streamer.stats()["received"] == 2  # the refused request never went upstream


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_past_drain_timeout_streams_get_an_sse_error_and_requests_a_503(stack, sig):
    gw, streamer, stall = start_gateway(stack, drain_timeout="1s")
    streamer.configure(chunk_delay_ms=500, chunks=40)  # a 20 s stream
    reader = StreamReader(gw, "talk")
    plain = PlainRequest(gw, "stuck")
    assert reader.started.wait(10), "stream did not start"
    wait_for(lambda: stall.stats()["received"] == 1, what="stalled request upstream")

    t0 = time.monotonic()
    gw.proc.p.send_signal(sig)
    reader.join(15)
    plain.join(15)
    cut_after = time.monotonic() - t0
    assert_exits_zero(gw, within=10)

    # The stream had content, then an error event (the SDK raises), never a silent end.
    assert reader.text.startswith("streamer-0"), reader.text
    assert isinstance(reader.error, openai.APIError), reader.error
    assert "shutting down" in str(reader.error), reader.error
    assert reader.finish_reason is None
    # The request whose response had not started gets a 503 with Retry-After.
    err = assert_openai_error_shape(plain.response, 503)
    assert "shutting down" in err["message"], err
    assert plain.response.headers["retry-after"] == "5"
    # Not before the drain period, and long before the stream would have ended.
    assert 0.9 <= cut_after < 15, cut_after
    # The upstream attempts were cancelled (connections closed), not left running.
    wait_for(lambda: stall.stats()["in_flight"] == 0, what="stalled upstream request released")


def test_second_signal_skips_the_wait(stack):
    gw, streamer, _ = start_gateway(stack, drain_timeout="60s")
    streamer.configure(chunk_delay_ms=500, chunks=40)
    reader = StreamReader(gw, "talk")
    assert reader.started.wait(10)
    gw.proc.p.send_signal(signal.SIGTERM)
    wait_for(lambda: httpx.get(gw.url + "/health/readiness", timeout=5).status_code == 503, what="draining")
    gw.proc.p.send_signal(signal.SIGTERM)
    reader.join(15)
    assert isinstance(reader.error, openai.APIError), reader.error
    assert_exits_zero(gw, within=10)


def test_idle_gateway_exits_at_once(stack):
    gw, _, _ = start_gateway(stack, drain_timeout="60s")
    t0 = time.monotonic()
    gw.proc.p.send_signal(signal.SIGTERM)
    assert_exits_zero(gw, within=10)
    assert time.monotonic() - t0 < 10

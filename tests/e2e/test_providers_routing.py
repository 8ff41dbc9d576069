"""Azure request shape (test 11) and simple-shuffle weights (test 12)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import USER_HI, deployment, make_config, mock_words

FAST = ("--ttft", "0ms", "--chunk-delay", "0ms", "--chunks", "1")


# 11 -------------------------------------------------------------------------

def test_azure_request_shape(stack):
    az = stack.mock("az", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")
    gw = stack.gateway(make_config([
        deployment("az-chat", model="azure/my-deploy", api_base=f"http://127.0.0.1:{az.port}",
                   api_version="2024-02-01", api_key="az-secret"),
        deployment("az-emb", model="azure/my-emb", api_base=f"http://127.0.0.1:{az.port}/",
                   api_version="2024-06-01", api_key="az-secret2"),
    ]))
    client = gw.client(api_key="client-key")
    resp = client.chat.completions.create(model="az-chat", messages=USER_HI)
    assert resp.choices[0].message.content == mock_words("az", 3)
    s = client.chat.completions.create(model="az-chat", messages=USER_HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == mock_words("az", 3)
    e = client.embeddings.create(model="az-emb", input=["x", "y"], encoding_format="float")
    assert len(e.data) == 2

    reqs = az.api_requests()
    assert len(reqs) == 3
    for r in reqs[:2]:
        assert r["path"] == "/openai/deployments/my-deploy/chat/completions?api-version=2024-02-01", r["path"]
        assert r["headers"].get("api-key") == "az-secret"
        assert "authorization" not in r["headers"], r["headers"]
        body = json.loads(r["body"])
        assert body["messages"] == USER_HI
    assert json.loads(reqs[1]["body"])["stream"] is True
    assert reqs[2]["path"] == "/openai/deployments/my-emb/embeddings?api-version=2024-06-01", reqs[2]["path"]
    assert reqs[2]["headers"].get("api-key") == "az-secret2"
    assert "authorization" not in reqs[2]["headers"]
    assert "client-key" not in json.dumps(reqs)


# 12 -------------------------------------------------------------------------

def spread(gw, n: int, group: str, threads: int = 8) -> None:
    # Plain httpx (the SDK's per-call overhead would dominate the run time).
    body = json.dumps({"model": group, "messages": USER_HI}).encode()
    with httpx.Client(base_url=gw.base_url, timeout=10,
                      limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads)) as h:
        def one(_):
            r = h.post("/chat/completions", content=body, headers={"content-type": "application/json"})
            return r.status_code

        with ThreadPoolExecutor(threads) as ex:
            statuses = list(ex.map(one, range(n)))
    assert statuses == [200] * n, sorted(set(statuses))


def test_simple_shuffle_weights(stack):
    mocks = [stack.mock(f"w{w}", *FAST) for w in (6, 3, 1)]
    gw = stack.gateway(make_config(
        [deployment("w", m, weight=w) for m, w in zip(mocks, (6, 3, 1))]))
    # 1000 requests: the 60 % share has sd 1.5 pp, so +-6 pp is a 4-sigma band.
    n = 1000
    spread(gw, n, "w")
    counts = [m.received() for m in mocks]
    assert sum(counts) == n, counts
    shares = [100.0 * c / n for c in counts]
    for share, want in zip(shares, (60, 30, 10)):
        assert abs(share - want) <= 6, (shares, "expected 60/30/10")


def test_simple_shuffle_rpm_when_no_weight(stack):
    mocks = [stack.mock(f"r{r}", *FAST) for r in (900, 100)]
    gw = stack.gateway(make_config(
        [deployment("r", m, rpm=r) for m, r in zip(mocks, (900, 100))]))
    n = 300
    spread(gw, n, "r")
    counts = [m.received() for m in mocks]
    assert sum(counts) == n
    share = 100.0 * counts[0] / n
    assert abs(share - 90) <= 6, (counts, "expected 90/10 by rpm")


def test_simple_shuffle_uniform_without_weights(stack):
    mocks = [stack.mock(f"u{i}", *FAST) for i in range(2)]
    gw = stack.gateway(make_config([deployment("u", m) for m in mocks]))
    n = 300
    spread(gw, n, "u")
    counts = [m.received() for m in mocks]
    assert sum(counts) == n
    assert abs(100.0 * counts[0] / n - 50) <= 9, counts

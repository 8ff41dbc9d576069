"""A client that reads slowly must not make the gateway buffer without bound.

The gateway keeps at most ClientChannel::kHighWater (256 KiB) per stream waiting for
the client, then stops reading the winner's upstream socket (back-pressure reaches the
provider through TCP) and reads again once the client caught up. Nothing is lost.
"""
import re
import socket
import time

from conftest import deployment, make_config, wait_for

CHUNKS = 100_000          # ~20 MB of SSE (the mock's maximum), well beyond the socket buffers
STALL_S = 3.0             # the client reads nothing for this long


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_stream(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect: small window
    s.connect(("127.0.0.1", port))
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def dechunk(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while True:
        eol = raw.index(b"\r\n", i)
        size = int(raw[i:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += raw[eol + 2:eol + 2 + size]
        i = eol + 2 + size + 2


def test_slow_reader_pauses_the_upstream_and_gets_every_byte(stack):
    mock = stack.mock("big", "--ttft", "0", "--chunk-delay", "0", "--chunks", str(CHUNKS), "--log-size", "10")
    gw = stack.gateway(make_config([deployment("m", mock)]))
    pid = gw.proc.p.pid
    # Warm up (threads, pools, allocator) so the baseline is the steady state.
    gw.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    mock.reset()
    base = rss_kb(pid)

    s = open_stream(gw.port)
    try:
        wait_for(lambda: mock.stats()["in_flight"] == 1, what="the upstream request")
        time.sleep(STALL_S)  # the client reads nothing
        stalled = rss_kb(pid)
        st = mock.stats()
        # Paused: the provider could not finish, although it produces instantly.
        assert st["completed"] == 0 and st["in_flight"] == 1, st
        assert stalled - base < 24 * 1024, f"gateway RSS grew {stalled - base} KiB during the stall"

        # Now read it all: every word, in order, and a clean end.
        s.settimeout(30)
        data = bytearray()
        deadline = time.monotonic() + 60
        while not data.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    rest = dechunk(rest)
    words = re.findall(rb'"content":"\s?big-(\d+)', rest)
    assert len(words) == CHUNKS, f"{len(words)} of {CHUNKS} words arrived"
    assert [int(w) for w in words[:3]] == [0, 1, 2] and int(words[-1]) == CHUNKS - 1
    assert b"data: [DONE]" in rest and b'"error"' not in rest
    wait_for(lambda: mock.stats()["completed"] == 1, what="the mock to finish")
    assert rss_kb(pid) - base < 24 * 1024
    gw.assert_healthy()

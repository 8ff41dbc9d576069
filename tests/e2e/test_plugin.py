"""Out-of-tree plugin (test 13): tests/sdk_example_test.sh installs the SDK,
builds sdk/examples/hello-strategy (prefer-provider) out of tree and leaves the
.so in <build>/lib/tailgate/example-plugins/. The gateway then loads it from
plugin_paths and it changes where requests go."""
from __future__ import annotations

import fcntl
import json
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, REPO, TAILGATE, USER_HI, deployment, make_config, mock_words

N = 30


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: cannot build the out-of-tree example plugin")
    # The script works inside the shared build tree: serialise concurrent e2e runs.
    with open(BUILD_DIR / ".e2e-sdk-example.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["bash", str(REPO / "tests" / "sdk_example_test.sh"), str(BUILD_DIR), str(REPO)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"sdk_example_test.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        published = BUILD_DIR / "lib" / "tailgate" / "example-plugins" / "prefer-provider.so"
        assert published.exists(), r.stdout[-2000:]
        d = tmp_path_factory.mktemp("plugins")
        shutil.copy2(published, d / "prefer-provider.so")
    return d


def send(gw, n=N, stream_every=3):
    client = gw.client()
    texts = []
    for i in range(n):
        if i % stream_every == 0:
            s = client.chat.completions.create(model="g", messages=USER_HI, stream=True)
            texts.append("".join(c.choices[0].delta.content or "" for c in s if c.choices))
        else:
            texts.append(client.chat.completions.create(model="g", messages=USER_HI).choices[0].message.content)
    return texts


def test_prefer_provider_moves_groq_first(stack, plugin_dir):
    oa = stack.mock("oa", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "2")
    gq = stack.mock("gq", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "2")
    model_list = [
        deployment("g", oa, model="openai/gpt-4o-mini", model_info={"id": "oa-dep"}),
        deployment("g", gq, model="groq/llama-3.1-8b-instant", model_info={"id": "gq-dep"}),
    ]
    gw = stack.gateway(make_config(model_list, router_settings={
        "plugin_paths": [str(plugin_dir)],
        "strategies": ["simple-shuffle", {"name": "prefer-provider", "args": {"provider": "groq"}}],
    }), name="with-plugin")
    texts = send(gw)
    assert texts == [mock_words("gq", 2)] * N
    assert gq.received() == N and oa.received() == 0
    assert gq.last_body()["model"] == "llama-3.1-8b-instant"
    assert "prefer-provider" in gw.log_text()

    # Control: the same deployments without the plugin spread over both.
    oa.reset(), gq.reset()
    ctl = stack.gateway(make_config(model_list), name="without-plugin")
    send(ctl)
    assert oa.received() > 0 and gq.received() > 0, (oa.received(), gq.received())


def test_prefer_provider_bad_args_fail_at_start(plugin_dir, tmp_path):
    cfg = tmp_path / "c.json.yaml"
    cfg.write_text(json.dumps(make_config(
        [deployment("g", api_base="http://127.0.0.1:9/v1")],
        router_settings={"plugin_paths": [str(plugin_dir)], "strategies": [{"name": "prefer-provider"}]})))
    r = subprocess.run([str(TAILGATE), "--check", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "provider" in r.stderr and "prefer-provider" in r.stderr, r.stderr

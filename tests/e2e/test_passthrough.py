"""OpenAI's pass-through endpoints (issue 19): /v1/moderations, /v1/images/generations,
/v1/images/edits|variations (multipart), /v1/audio/speech (binary, streamed) and
/v1/audio/transcriptions|translations (multipart),
with the official `openai` SDK against the real gateway and real mock processes.

Each goes through the same steps as chat: the key check (models, limits, spend),
routing by `model` (rewritten to the deployment's upstream model), retries, metrics;
providers that cannot serve them (anthropic/) are refused before anything is sent.
"""
from __future__ import annotations

import base64
import time

import httpx
import openai
import pytest

from conftest import assert_openai_error_shape, deployment, make_config, wait_for

MASTER = "sk-master-passthrough"
QUICK = ("--ttft", "2ms", "--chunk-delay", "2ms", "--chunks", "4")
WAV = b"RIFF" + bytes(range(256)) * 4  # 1028 bytes of "audio"
PNG = b"\x89PNG\r\n\x1a\n\x00\xff" + bytes(range(255, -1, -1)) * 2  # 522 bytes of "image", every byte value


def dep(group, mock, model, **kw):
    return deployment(group, mock, model=model, model_info={"id": f"{group}@{mock.name}"}, **kw)


@pytest.fixture(scope="module")
def mocks(module_stack):
    a = module_stack.mock("pa", *QUICK)
    b = module_stack.mock("pb", *QUICK)
    bad = module_stack.mock("pbad", *QUICK, "--fail-rate", "1", "--fail-status", "500")
    return a, b, bad


@pytest.fixture(scope="module")
def gw(module_stack, mocks, tmp_path_factory):
    a, b, bad = mocks
    db = tmp_path_factory.mktemp("passthrough-db") / "keys.db"
    cfg = make_config(
        [dep("mod", a, "openai/text-moderation-stable"),
         dep("omni-moderation-latest", b, "openai/omni-moderation-2024-09-26"),
         dep("img", a, "openai/dall-e-3", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
         dep("tts", a, "openai/tts-1"),
         dep("tts-slow", b, "openai/tts-1"),
         dep("whisper", b, "openai/whisper-1"),
         # a retry group: one deployment always answers 500
         dep("tts-r", a, "openai/tts-1"), dep("tts-r", bad, "openai/tts-1"),
         dep("whisper-r", b, "openai/whisper-1"), dep("whisper-r", bad, "openai/whisper-1"),
         dep("broken", bad, "openai/tts-1"),
         dep("edit-img", a, "openai/dall-e-2", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
         dep("edit-img-r", b, "openai/dall-e-2"), dep("edit-img-r", bad, "openai/dall-e-2"),
         # a group whose provider speaks another wire
         dep("claude", a, "anthropic/claude-3-5-haiku")],
        router_settings={"num_retries": 2, "disable_cooldowns": True},
        general_settings={"master_key": MASTER, "database_url": f"sqlite://{db}", "proxy_batch_write_at": 0.2})
    return module_stack.gateway(cfg)


@pytest.fixture
def client(gw, mocks):
    for m in mocks:
        m.reset()
    mocks[2].configure(fail_rate=1, fail_status=500)
    return gw.client(api_key=MASTER)


def admin(gw) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=30, headers={"Authorization": f"Bearer {MASTER}"})


def speech_direct(mock, **body) -> bytes:
    """What the mock itself answers (the gateway must relay exactly these bytes)."""
    r = httpx.post(mock.base_url + "/audio/speech", json={"model": "x", **body}, timeout=10)
    assert r.status_code == 200, r.text
    return r.content


# ---------------------------------------------------------------------------
# moderations
# ---------------------------------------------------------------------------

def test_moderations_route_by_model_and_rewrite_it(client, mocks):
    a, b, _ = mocks
    raw = client.moderations.with_raw_response.create(model="mod", input=["please flag this", "hello"])
    res = raw.parse()
    assert [r.flagged for r in res.results] == [True, False]
    assert res.results[0].categories.violence is True
    assert raw.headers["x-tailgate-deployment"] == "mod@pa"
    assert a.last_body()["model"] == "text-moderation-stable"
    assert a.last_body()["input"] == ["please flag this", "hello"]
    assert b.received() == 0


def test_moderations_without_model_use_the_default_group(client, mocks):
    a, b, _ = mocks
    raw = client.moderations.with_raw_response.create(input="hello")
    assert raw.parse().results[0].flagged is False
    assert raw.headers["x-tailgate-model-group"] == "omni-moderation-latest"
    assert b.last_body() == {"model": "omni-moderation-2024-09-26", "input": "hello"}
    assert a.received() == 0


def test_moderations_without_model_or_default_group_is_a_clear_400(stack, mocks):
    gw = stack.gateway(make_config([dep("mod", mocks[0], "openai/text-moderation-stable")]))
    r = gw.http.post("/v1/moderations", json={"input": "hi"})
    err = assert_openai_error_shape(r, 400)
    assert err["param"] == "model"
    assert "omni-moderation-latest" in err["message"], err


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------

def test_images_generate_passes_b64_and_url_through(client, mocks):
    a, _, _ = mocks
    raw = client.images.with_raw_response.generate(model="img", prompt="a cat", n=2, response_format="b64_json")
    img = raw.parse()
    assert [base64.b64decode(d.b64_json) for d in img.data] == [b"\x89PNG mock pa a cat 0", b"\x89PNG mock pa a cat 1"]
    assert raw.headers["x-tailgate-deployment"] == "img@pa"
    assert a.last_body() == {"model": "dall-e-3", "prompt": "a cat", "n": 2, "response_format": "b64_json"}
    img = client.images.generate(model="img", prompt="a dog", response_format="url")
    assert img.data[0].url.startswith("https://images.mock.invalid/pa/")
    assert img.data[0].revised_prompt == "a dog (pa)"


# ---------------------------------------------------------------------------
# image edits and variations: multipart, answered like generations
# ---------------------------------------------------------------------------

def mock_image(b64: str, kind: str, mock: str, i: int = 0) -> bytes:
    """The bytes the mock saw in the first image part (its b64_json echoes them)."""
    data = base64.b64decode(b64)
    prefix = f"\x89PNG mock {kind} {mock} {i}:".encode("latin-1")
    assert data.startswith(prefix), data[:40]
    return data[len(prefix):]


def test_image_edit_routes_by_model_and_forwards_the_exact_file(client, mocks):
    a, b, _ = mocks
    raw = client.images.with_raw_response.edit(model="edit-img", image=("cat.png", PNG, "image/png"),
                                               prompt="a red hat", n=2, response_format="b64_json")
    img = raw.parse()
    assert raw.headers["x-tailgate-deployment"] == "edit-img@pa"
    assert raw.headers["x-tailgate-model-group"] == "edit-img"
    assert [mock_image(d.b64_json, "edit", "pa", i) for i, d in enumerate(img.data)] == [PNG, PNG]
    # The prompt and the file reached the mock, with the model rewritten to the deployment's.
    assert img.data[0].revised_prompt == f"a red hat (pa with dall-e-2: cat.png, {len(PNG)} bytes)"
    sent = a.api_requests()[-1]
    assert sent["path"] == "/v1/images/edits"
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="model"\r\n\r\ndall-e-2\r\n' in sent["body"]
    assert 'name="model"\r\n\r\nedit-img\r\n' not in sent["body"]
    assert 'name="prompt"\r\n\r\na red hat\r\n' in sent["body"]
    assert b.received() == 0


def test_image_edit_with_several_images_and_a_mask(client, mocks):
    a, _, _ = mocks
    # Several images: the SDK sends `image[]` parts; the mask goes along as it is.
    two = b"\x89PNG2"
    img = client.images.edit(model="edit-img", image=[("one.png", PNG, "image/png"), ("two.png", two, "image/png")],
                             mask=("mask.png", b"\x89PNGmask", "image/png"), prompt="merge")
    assert mock_image(img.data[0].b64_json, "edit", "pa") == PNG
    assert img.data[0].revised_prompt == f"merge (pa with dall-e-2: one.png, two.png, {len(PNG) + len(two)} bytes)"
    body = a.api_requests()[-1]["body"]
    assert body.count('name="image[]"') == 2 and 'name="mask"; filename="mask.png"' in body


def test_image_variation_routes_by_model_and_forwards_the_exact_file(client, mocks):
    a, _, _ = mocks
    raw = client.images.with_raw_response.create_variation(model="edit-img", image=("v.png", PNG, "image/png"))
    img = raw.parse()
    assert raw.headers["x-tailgate-deployment"] == "edit-img@pa"
    assert mock_image(img.data[0].b64_json, "variation", "pa") == PNG
    assert img.data[0].revised_prompt == f"variation (pa with dall-e-2: v.png, {len(PNG)} bytes)"
    sent = a.api_requests()[-1]
    assert sent["path"] == "/v1/images/variations"
    assert 'name="model"\r\n\r\ndall-e-2\r\n' in sent["body"]
    img = client.images.create_variation(model="edit-img", image=("v.png", PNG, "image/png"), response_format="url")
    assert img.data[0].url.startswith("https://images.mock.invalid/pa/variation-")


def test_image_edits_and_variations_need_a_key(gw, mocks):
    a, _, _ = mocks
    a.reset()
    for key in ("sk-wrong", None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        for path in ("/v1/images/edits", "/v1/images/variations"):
            r = gw.http.post(path, data={"model": "edit-img", "prompt": "x"},
                             files={"image": ("a.png", PNG, "image/png")}, headers=headers)
            assert_openai_error_shape(r, 401)
    with pytest.raises(openai.AuthenticationError):
        gw.client(api_key="sk-wrong").images.edit(model="edit-img", image=("a.png", PNG), prompt="x")
    assert a.received() == 0


def test_image_forms_without_an_image_or_model_are_a_clear_400(gw, mocks):
    a, _, _ = mocks
    a.reset()
    h = admin(gw)
    for path in ("/v1/images/edits", "/v1/images/variations"):
        r = h.post(path, data={"model": "edit-img", "prompt": "x"}, files={"mask": ("m.png", PNG, "image/png")})
        err = assert_openai_error_shape(r, 400)
        assert err["param"] == "image" and err["code"] == "missing_required_parameter", err
        assert "'image'" in err["message"], err
        r = h.post(path, data={"prompt": "x"}, files={"image": ("a.png", PNG, "image/png")})
        assert assert_openai_error_shape(r, 400)["param"] == "model"
        r = h.post(path, json={"model": "edit-img", "prompt": "x"})
        err = assert_openai_error_shape(r, 400)
        assert err["code"] == "invalid_multipart" and "multipart/form-data" in err["message"], err
    assert a.received() == 0


def test_image_edits_and_variations_retry_past_a_failing_deployment(client, mocks):
    _, b, bad = mocks
    attempts = []
    for i in range(8):
        raw = client.images.with_raw_response.edit(model="edit-img-r", image=("r.png", PNG, "image/png"),
                                                   prompt=f"retry {i}")
        assert mock_image(raw.parse().data[0].b64_json, "edit", "pb") == PNG
        assert raw.headers["x-tailgate-deployment"] == "edit-img-r@pb"
        attempts.append(int(raw.headers["x-tailgate-attempts"]))
        raw = client.images.with_raw_response.create_variation(model="edit-img-r", image=("r.png", PNG, "image/png"))
        assert mock_image(raw.parse().data[0].b64_json, "variation", "pb") == PNG
        attempts.append(int(raw.headers["x-tailgate-attempts"]))
    assert set(attempts) <= {1, 2}
    assert bad.received() == sum(n - 1 for n in attempts) > 0, "the failing deployment was tried and retried past"
    assert b.received() == len(attempts)


def test_image_edits_and_variations_are_refused_for_an_anthropic_group(client, mocks):
    a, _, _ = mocks
    with pytest.raises(openai.BadRequestError) as e:
        client.images.edit(model="claude", image=("a.png", PNG, "image/png"), prompt="x")
    assert e.value.body["code"] == "unsupported_by_deployment"
    assert "does not serve /v1/images/edits" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.images.create_variation(model="claude", image=("a.png", PNG, "image/png"))
    assert e.value.body["code"] == "unsupported_by_deployment"
    assert "does not serve /v1/images/variations" in e.value.message
    assert a.received() == 0


def test_image_edits_and_variations_are_priced_like_generations(gw, client, mocks):
    h = admin(gw)
    r = h.post("/key/generate", json={"models": ["edit-img"]})
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    vk = gw.client(api_key=key)
    with pytest.raises(openai.PermissionDeniedError):
        vk.images.edit(model="edit-img-r", image=("a.png", PNG), prompt="x")
    assert vk.images.edit(model="edit-img", image=("a.png", PNG, "image/png"), prompt="a red hat").data
    assert vk.images.create_variation(model="edit-img", image=("a.png", PNG, "image/png"), n=2).data
    rows = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(h.get("/spend/logs", params={"api_key": key}).json()),
                    timeout=10, what="two spend rows")
    by_type = {row["call_type"]: row for row in rows}
    assert sorted(by_type) == ["image_edit", "image_variation"]
    # The mock's usage (prompt words, 100 per image) x the configured prices.
    assert by_type["image_edit"]["spend"] == pytest.approx(3 * 1e-6 + 100 * 2e-6)
    assert by_type["image_variation"]["spend"] == pytest.approx(1 * 1e-6 + 200 * 2e-6)


# ---------------------------------------------------------------------------
# audio speech: binary, streamed as it arrives
# ---------------------------------------------------------------------------

def test_speech_streams_the_mocks_bytes(client, mocks):
    a, _, _ = mocks
    expected = speech_direct(a, input="hello audio", voice="alloy")
    a.reset()
    with client.audio.speech.with_streaming_response.create(model="tts", voice="alloy", input="hello audio") as r:
        assert r.headers["content-type"] == "audio/mpeg"
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["x-tailgate-deployment"] == "tts@pa"
        data = r.read()
    assert data == expected and len(data) == 4 * 256
    assert a.last_body() == {"model": "tts-1", "voice": "alloy", "input": "hello audio"}
    # The content type follows the upstream's (response_format).
    with client.audio.speech.with_streaming_response.create(model="tts", voice="echo", input="x",
                                                            response_format="wav") as r:
        assert r.headers["content-type"] == "audio/wav"
        assert r.read() == speech_direct(a, input="x", voice="echo")


def test_speech_reaches_the_client_before_the_upstream_finishes(client, mocks):
    a, _, _ = mocks
    a.configure(ttft_ms=10, chunk_delay_ms=400, chunks=3)
    t0 = time.monotonic()
    arrivals = []
    with client.audio.speech.with_streaming_response.create(model="tts", voice="alloy", input="slow") as r:
        for chunk in r.iter_bytes():
            arrivals.append((time.monotonic() - t0, len(chunk)))
    assert sum(n for _, n in arrivals) == 3 * 256
    # The mock sends its pieces 400 ms apart: the first must not wait for the last.
    assert arrivals[0][0] < arrivals[-1][0] - 0.5, arrivals


def test_speech_cut_mid_stream_is_an_error_not_a_short_file(client, mocks):
    a, _, _ = mocks
    a.configure(reset_mid_stream_after=2)
    with pytest.raises(Exception) as e:  # the SDK's httpx raises its own RemoteProtocolError class
        with client.audio.speech.with_streaming_response.create(model="tts", voice="alloy", input="cut") as r:
            assert r.status_code == 200
            r.read()
    assert type(e.value).__name__ in ("RemoteProtocolError", "ReadError", "APIConnectionError"), repr(e.value)
    assert "incomplete" in str(e.value) or "closed" in str(e.value), repr(e.value)


# ---------------------------------------------------------------------------
# audio transcriptions and translations: multipart
# ---------------------------------------------------------------------------

def test_transcriptions_read_model_from_the_form_and_forward_the_file(client, mocks):
    _, b, _ = mocks
    raw = client.audio.transcriptions.with_raw_response.create(model="whisper", file=("clip.wav", WAV, "audio/wav"))
    assert raw.parse().text == f"mock transcription of clip.wav ({len(WAV)} bytes) by pb with whisper-1"
    assert raw.headers["x-tailgate-deployment"] == "whisper@pb"
    sent = b.api_requests()[-1]
    assert sent["path"] == "/v1/audio/transcriptions"
    assert sent["body_size"] > len(WAV)
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="model"\r\n\r\nwhisper-1\r\n' in sent["body"]  # the form, its model the deployment's
    assert 'filename="clip.wav"' in sent["body"]
    # response_format=text: plain text passed through as it came.
    text = client.audio.transcriptions.create(model="whisper", file=("a.mp3", b"ID3abc", "audio/mpeg"),
                                              response_format="text")
    assert text.strip() == "mock transcription of a.mp3 (6 bytes) by pb with whisper-1"
    tr = client.audio.translations.create(model="whisper", file=("b.wav", WAV, "audio/wav"))
    assert tr.text == f"mock translation of b.wav ({len(WAV)} bytes) by pb with whisper-1"


def test_bad_multipart_is_a_400_naming_the_problem(gw):
    h = admin(gw)
    r = h.post("/v1/audio/transcriptions", content=b"--x\r\nnot a header block",
               headers={"Content-Type": "multipart/form-data; boundary=x"})
    err = assert_openai_error_shape(r, 400)
    assert err["code"] == "invalid_multipart" and "multipart" in err["message"], err
    r = h.post("/v1/audio/transcriptions", json={"model": "whisper"})
    err = assert_openai_error_shape(r, 400)
    assert "multipart/form-data" in err["message"], err
    r = h.post("/v1/audio/transcriptions", files={"file": ("a.wav", WAV, "audio/wav")})
    err = assert_openai_error_shape(r, 400)
    assert err["param"] == "model", err
    r = h.post("/v1/audio/transcriptions", data={"model": "whisper"}, files={"other": ("a.wav", WAV)})
    assert assert_openai_error_shape(r, 400)["param"] == "file"


# ---------------------------------------------------------------------------
# retries, errors, providers that cannot serve them
# ---------------------------------------------------------------------------

def test_retry_after_a_500_from_one_deployment(client, mocks):
    a, b, bad = mocks
    expected = speech_direct(a, input="retry me", voice="alloy")
    a.reset()
    attempts = []
    for i in range(10):
        with client.audio.speech.with_streaming_response.create(model="tts-r", voice="alloy", input="retry me") as r:
            assert r.read() == expected
            assert r.headers["x-tailgate-deployment"] == "tts-r@pa"
            attempts.append(int(r.headers["x-tailgate-attempts"]))
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-r", file=("c.wav", WAV))
        assert raw.parse().text.endswith("by pb with whisper-1")
        attempts.append(int(raw.headers["x-tailgate-attempts"]))
    assert set(attempts) <= {1, 2}
    assert bad.received() == sum(n - 1 for n in attempts) > 0, "the failing deployment was tried and retried past"


def test_upstream_error_keeps_openai_shape_and_status(client, mocks):
    with pytest.raises(openai.InternalServerError) as e:
        client.audio.speech.create(model="broken", voice="alloy", input="x")
    assert e.value.status_code == 500
    assert "mock injected 500" in e.value.message


def test_anthropic_group_is_refused_before_sending(client, mocks):
    a, _, _ = mocks
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="claude", voice="alloy", input="x")
    assert "does not serve /v1/audio/speech" in e.value.message
    assert e.value.body["code"] == "unsupported_by_deployment"
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="claude", prompt="x")
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="claude", file=("a.wav", WAV))
    with pytest.raises(openai.BadRequestError):
        client.moderations.create(model="claude", input="x")
    assert a.received() == 0


def test_race_on_speech_commits_at_the_first_byte(client, mocks):
    a, b, _ = mocks
    b.configure(ttft_ms=3000)
    expected = speech_direct(a, input="race", voice="alloy")
    t0 = time.monotonic()
    with client.audio.speech.with_streaming_response.create(
            model="tts-slow,tts", voice="alloy", input="race", extra_body={"fastest_response": True}) as r:
        data = r.read()
        assert r.headers["x-tailgate-deployment"] == "tts@pa"
    assert data == expected
    assert time.monotonic() - t0 < 2.0, "the slow group's answer was not waited for"
    # The loser was cancelled: its connection closed before it sent anything.
    wait_for(lambda: b.stats()["cancelled_by_client"] == 1, what="the slow attempt cancelled")
    with pytest.raises(openai.BadRequestError) as e:  # every group's answer in one body: not for audio
        client.audio.speech.create(model="tts,tts-slow", voice="alloy", input="x")
    assert e.value.body["code"] == "model_list_pass_through"


# ---------------------------------------------------------------------------
# virtual keys, spend and metrics
# ---------------------------------------------------------------------------

def test_virtual_keys_limit_models_and_record_spend_and_metrics(gw, client, mocks):
    h = admin(gw)
    r = h.post("/key/generate", json={"models": ["tts", "whisper", "omni-moderation-latest", "img"]})
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    before = h.get("/metrics").text
    vk = gw.client(api_key=key)
    with pytest.raises(openai.PermissionDeniedError):
        vk.images.generate(model="claude", prompt="x")
    with pytest.raises(openai.PermissionDeniedError):
        vk.moderations.create(model="mod", input="x")
    with vk.audio.speech.with_streaming_response.create(model="tts", voice="alloy", input="paid") as s:
        assert len(s.read()) == 4 * 256
    assert vk.audio.transcriptions.create(model="whisper", file=("k.wav", WAV)).text
    assert vk.moderations.create(input="hello").results  # the default group, which the key may use
    assert vk.images.generate(model="img", prompt="priced picture").data
    rows = wait_for(lambda: (lambda x: x if len(x) == 4 else None)(h.get("/spend/logs", params={"api_key": key}).json()),
                    timeout=10, what="four spend rows")
    assert sorted(row["call_type"] for row in rows) == ["image_generation", "moderation", "speech", "transcription"]
    image = next(row for row in rows if row["call_type"] == "image_generation")
    assert image["spend"] == pytest.approx(2 * 1e-6 + 100 * 2e-6)  # the mock's usage x the configured price
    after = h.get("/metrics").text

    def count(text, group):
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith("tailgate_requests_total{") and f'model_group="{group}"' in l
                   and 'status_class="2xx"' in l)
    for group in ("tts", "whisper", "img", "omni-moderation-latest"):
        assert count(after, group) - count(before, group) == 1, group


def test_azure_client_reaches_images_and_audio(gw, client, mocks):
    a, b, _ = mocks
    az = openai.AzureOpenAI(azure_endpoint=gw.url, api_version="2025-03-01-preview", api_key=MASTER, max_retries=0)
    img = az.images.generate(model="img", prompt="an azure cat", response_format="b64_json")
    assert base64.b64decode(img.data[0].b64_json) == b"\x89PNG mock pa an azure cat 0"
    assert a.last_body()["model"] == "dall-e-3"
    tr = az.audio.transcriptions.create(model="whisper", file=("z.wav", WAV))
    assert tr.text == f"mock transcription of z.wav ({len(WAV)} bytes) by pb with whisper-1"
    with az.audio.speech.with_streaming_response.create(model="tts", voice="alloy", input="azure") as r:
        assert r.read() == speech_direct(a, input="azure", voice="alloy")
    ed = az.images.edit(model="edit-img", image=("az.png", PNG, "image/png"), prompt="azure hat")
    assert mock_image(ed.data[0].b64_json, "edit", "pa") == PNG
    assert ed.data[0].revised_prompt == f"azure hat (pa with dall-e-2: az.png, {len(PNG)} bytes)"
    assert a.api_requests()[-1]["path"] == "/v1/images/edits"
    # Azure has no variations API, so AzureOpenAI's create_variation names no deployment in its
    # path; the deployment path is served all the same, with Azure's api-key header.
    r = httpx.post(gw.url + "/openai/deployments/edit-img/images/variations?api-version=2025-03-01-preview",
                   files={"image": ("az.png", PNG, "image/png")}, headers={"api-key": MASTER}, timeout=30)
    assert r.status_code == 200, r.text
    assert mock_image(r.json()["data"][0]["b64_json"], "variation", "pa") == PNG
    assert r.headers["x-tailgate-model-group"] == "edit-img"
    assert a.api_requests()[-1]["path"] == "/v1/images/variations"
    assert 'name="model"\r\n\r\ndall-e-2\r\n' in a.api_requests()[-1]["body"]  # added: the form had none

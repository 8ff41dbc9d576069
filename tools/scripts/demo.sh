#!/usr/bin/env bash
# Quick start: installs what is missing, builds, starts three mock providers on
# loopback and the gateway on configs/demo.yaml. Ctrl-C stops everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
bash tools/scripts/setup.sh

PORT="${PORT:-4000}"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for spec in 18001:mockA:120ms 18002:mockB:200ms 18003:mockC:80ms; do
  IFS=: read -r port name ttft <<<"$spec"
  build/bin/tailgate-mock --port "$port" --name "$name" --ttft "$ttft" --ttft-dist lognormal \
    --chunk-delay 30ms --chunks 12 >/dev/null &
  pids+=($!)
done

cat <<MSG

  Tailgate is starting on http://127.0.0.1:$PORT with configs/demo.yaml
  (mock providers on 127.0.0.1:18001-18003). Try it with the OpenAI SDK:

    .venv/bin/python - <<'PY'
    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:$PORT/v1", api_key="anything")
    r = client.chat.completions.with_raw_response.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hello"}])
    print(r.headers["x-tailgate-deployment"], r.parse().choices[0].message.content)
    for chunk in client.chat.completions.create(model="groq-llama", stream=True,
            messages=[{"role": "user", "content": "Hello"}]):
        print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
    PY

  or: curl http://127.0.0.1:$PORT/v1/models

MSG
build/bin/tailgate --config configs/demo.yaml --port "$PORT" &
pids+=($!)
wait "${pids[-1]}"

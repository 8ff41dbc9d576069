// One call with the official OpenAI Node SDK, the outcome printed as JSON:
//   node sdk_call.mjs BASE_URL MODEL stream|plain [maxRetries]
// {"ok": true, "content": "...", "chunks": N} or {"ok": false, "status": 500, "message": "...", "headers": {...}}
import OpenAI from "openai";

const [baseURL, model, mode, maxRetries] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-node", maxRetries: Number(maxRetries ?? 2), timeout: 20000 });
const messages = [{ role: "user", content: "hi" }];
try {
  if (mode === "stream") {
    const stream = await client.chat.completions.create({ model, messages, stream: true });
    let content = "", chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      content += chunk.choices[0]?.delta?.content ?? "";
    }
    console.log(JSON.stringify({ ok: true, content, chunks }));
  } else {
    const r = await client.chat.completions.create({ model, messages });
    console.log(JSON.stringify({ ok: true, content: r.choices[0].message.content }));
  }
} catch (e) {
  const headers = e.headers ? Object.fromEntries(Object.entries(e.headers)) : {};
  console.log(JSON.stringify({ ok: false, status: e.status ?? null, message: String(e.message), headers }));
}

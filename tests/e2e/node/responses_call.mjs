// One Responses API call with the official OpenAI Node SDK, the outcome printed as JSON:
//   node responses_call.mjs BASE_URL MODEL stream|plain|tools [previousResponseId]
// {"ok": true, "id": "...", "text": "...", "types": [...], "sequence": [...], "calls": [...]}
// or {"ok": false, "status": 400, "message": "..."}
import OpenAI from "openai";

const [baseURL, model, mode, previous] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-node", maxRetries: 0, timeout: 20000 });
const tools = [{ type: "function", name: "lookup", parameters: { type: "object", properties: {} } }];
const params = { model, input: "hello from node", ...(previous ? { previous_response_id: previous } : {}) };
try {
  if (mode === "stream") {
    const stream = await client.responses.create({ ...params, stream: true });
    const types = [], sequence = [];
    let text = "", id = "";
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") id = event.response.id;
    }
    console.log(JSON.stringify({ ok: true, id, text, types, sequence }));
  } else if (mode === "helper") {
    const stream = client.responses.stream(params);
    let text = "";
    stream.on("response.output_text.delta", (e) => { text += e.delta; });
    const final = await stream.finalResponse();
    const finalText = final.output.filter((o) => o.type === "message").flatMap((o) => o.content)
      .map((c) => c.text ?? "").join("");
    console.log(JSON.stringify({ ok: true, id: final.id, text, final: finalText, status: final.status }));
  } else {
    const r = await client.responses.create({ ...params, ...(mode === "tools" ? { tools } : {}) });
    const calls = r.output.filter((o) => o.type === "function_call").map((o) => ({ name: o.name, arguments: o.arguments }));
    console.log(JSON.stringify({ ok: true, id: r.id, text: r.output_text, calls }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, status: e.status ?? null, message: String(e.message) }));
}

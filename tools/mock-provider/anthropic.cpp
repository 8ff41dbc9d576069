#include "anthropic.hpp"

#include <algorithm>
#include <optional>

#include "json_writer.hpp"

namespace tailgate::mock {
namespace {

// What the real API accepts at the top level; anything else is a 400 there too,
// which is how the gateway's translation is held to the API.
constexpr std::string_view kFields[] = {
    "model",       "messages",     "max_tokens",    "system",      "stop_sequences", "stream",
    "temperature", "top_p",        "top_k",         "tools",       "tool_choice",    "metadata",
    "thinking",    "service_tier", "output_config", "cache_control", "container",    "inference_geo",
    "speed",       "context_management"};
constexpr std::string_view kBlocks[] = {"text",     "image",           "document",      "tool_use", "tool_result",
                                        "thinking", "redacted_thinking", "search_result"};

template <std::size_t N>
bool one_of(std::string_view s, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

const char* error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

Reply refuse(int status, std::string_view message) {
  Reply r;
  r.status = status;
  r.body = anthropic_error_body(status, message);
  r.error_body = &anthropic_error_body;
  return r;
}

std::string_view header(const ReplyContext& ctx, std::string_view name) {
  if (ctx.headers)
    for (const auto& [k, v] : *ctx.headers)
      if (k == name) return v;
  return {};
}

// The request as the mock answers it.
struct Ask {
  std::string model;
  long long max_tokens = 0;
  bool stream = false;
  int input_words = 0, cached_words = 0;  // cached: words of blocks marked cache_control
  std::vector<std::string> tool_use_ids;
  bool ends_with_tool_result = false;
  std::optional<std::string> call;  // the tool the answer calls
  bool thinking = false;            // `thinking` enabled: a thinking block comes first
};

// Words of a block or a content (string / blocks); blocks with cache_control count as cached.
void count(const rapidjson::Value& content, Ask& a) {
  if (content.IsString()) {
    a.input_words += count_words({content.GetString(), content.GetStringLength()});
    return;
  }
  if (!content.IsArray()) return;
  for (const auto& b : content.GetArray()) {
    const int n = count_words(str_member(b, "text"));
    a.input_words += n;
    if (b.IsObject() && b.HasMember("cache_control")) a.cached_words += n;
    if (b.IsObject() && b.HasMember("content")) count(b["content"], a);
  }
}

std::string check_block(const rapidjson::Value& b, Ask& a, bool& has_tool_result) {
  const std::string_view type = str_member(b, "type");
  if (!one_of(type, kBlocks)) return "messages: unknown content block type '" + std::string(type) + "'";
  if (type == "text" && str_member(b, "text").empty()) return "messages: text content blocks must be non-empty";
  if (type == "tool_use") {
    if (!b.HasMember("input") || !b["input"].IsObject()) return "messages: tool_use.input: Input should be an object";
    a.tool_use_ids.emplace_back(str_member(b, "id"));
  }
  if (type == "tool_result") {
    const std::string id(str_member(b, "tool_use_id"));
    if (std::find(a.tool_use_ids.begin(), a.tool_use_ids.end(), id) == a.tool_use_ids.end())
      return "messages: unexpected `tool_use_id` found in `tool_result` blocks: " + id +
             ". Each `tool_result` block must have a corresponding `tool_use` block in the previous message.";
    has_tool_result = true;
  }
  return {};
}

std::string check_messages(const rapidjson::Value& msgs, Ask& a) {
  if (!msgs.IsArray() || msgs.Empty()) return "messages: at least one message is required";
  for (const auto& m : msgs.GetArray()) {
    const std::string_view role = str_member(m, "role");
    if (role != "user" && role != "assistant") return "messages: roles must be 'user' or 'assistant'";
    auto c = m.FindMember("content");
    if (c == m.MemberEnd() || !(c->value.IsString() || c->value.IsArray()))
      return "messages: content must be a string or a list of content blocks";
    bool has_tool_result = false;
    if (c->value.IsArray())
      for (const auto& b : c->value.GetArray())
        if (auto err = check_block(b, a, has_tool_result); !err.empty()) return err;
    a.ends_with_tool_result = has_tool_result;
    count(c->value, a);
  }
  return {};
}

std::string check_tools(const rapidjson::Document& doc, Ask& a) {
  auto tools = doc.FindMember("tools");
  if (tools == doc.MemberEnd()) return {};
  if (!tools->value.IsArray()) return "tools: Input should be a valid list";
  for (const auto& t : tools->value.GetArray())
    if (str_member(t, "name").empty()) return "tools: each tool needs a name";
  std::string_view choice = "auto", named;
  if (auto tc = doc.FindMember("tool_choice"); tc != doc.MemberEnd()) {
    choice = str_member(tc->value, "type");
    named = str_member(tc->value, "name");
    if (choice != "auto" && choice != "any" && choice != "tool" && choice != "none")
      return "tool_choice: type must be auto, any, tool or none";
  }
  if (!tools->value.Empty() && !a.ends_with_tool_result && choice != "none")
    a.call = std::string(choice == "tool" ? named : str_member(tools->value[0], "name"));
  return {};
}

std::string check(const rapidjson::Document& doc, Ask& a) {
  for (const auto& m : doc.GetObject())
    if (!one_of({m.name.GetString(), m.name.GetStringLength()}, kFields))
      return std::string(m.name.GetString()) + ": Extra inputs are not permitted";
  a.model = str_member(doc, "model");
  if (a.model.empty()) return "model: Field required";
  auto mt = doc.FindMember("max_tokens");
  if (mt == doc.MemberEnd() || !mt->value.IsInt64() || mt->value.GetInt64() < 1)
    return "max_tokens: Field required (a positive integer)";
  a.max_tokens = mt->value.GetInt64();
  if (auto s = doc.FindMember("stream"); s != doc.MemberEnd()) {
    if (!s->value.IsBool()) return "stream: Input should be a valid boolean";
    a.stream = s->value.GetBool();
  }
  if (auto s = doc.FindMember("system"); s != doc.MemberEnd()) count(s->value, a);
  if (auto t = doc.FindMember("thinking"); t != doc.MemberEnd())
    a.thinking = str_member(t->value, "type") == "enabled" || str_member(t->value, "type") == "adaptive";
  auto msgs = doc.FindMember("messages");
  if (msgs == doc.MemberEnd()) return "messages: Field required";
  if (auto err = check_messages(msgs->value, a); !err.empty()) return err;
  return check_tools(doc, a);
}

// ---- payloads ----

std::string event(std::string_view type, const std::function<void(Writer&)>& fill) {
  std::string out = "event: ";
  out += type;
  out += "\ndata: ";
  out += to_json([&](Writer& w) {
    w.StartObject();
    key(w, "type");
    put(w, type);
    fill(w);
    w.EndObject();
  });
  out += "\n\n";
  return out;
}

void usage(Writer& w, const Ask& a, long long output) {
  key(w, "usage");
  w.StartObject();
  key(w, "input_tokens");
  w.Int(std::max(a.input_words - a.cached_words, 1));
  key(w, "cache_creation_input_tokens");
  w.Int(0);
  key(w, "cache_read_input_tokens");
  w.Int(a.cached_words);
  key(w, "output_tokens");
  w.Int64(output);
  w.EndObject();
}

struct Answer {
  std::string id, stop_reason;
  std::vector<std::string> words;
  std::string call_id, call_input;  // when a.call
  std::string thinking;             // when a.thinking: "NAME thinks", signed "sig-NAME"
  int main = 0;                     // index of the text / tool_use block (1 after a thinking block)
};

void block_start(Writer& w, std::string_view type, std::string_view field) {
  w.StartObject();
  key(w, "type");
  put(w, type);
  key(w, field);
  put(w, "");
  w.EndObject();
}

// The thinking block, whole (bodies) or as its stream events.
void thinking_block(Writer& w, const Answer& ans) {
  w.StartObject();
  key(w, "type");
  put(w, "thinking");
  key(w, "thinking");
  put(w, ans.thinking);
  key(w, "signature");
  put(w, "sig-" + ans.thinking.substr(0, ans.thinking.find(' ')));
  w.EndObject();
}

void tool_use_block(Writer& w, const Ask& a, const Answer& ans, bool with_input) {
  w.StartObject();
  key(w, "type");
  put(w, "tool_use");
  key(w, "id");
  put(w, ans.call_id);
  key(w, "name");
  put(w, *a.call);
  key(w, "input");
  if (with_input) w.RawValue(ans.call_input.data(), ans.call_input.size(), rapidjson::kObjectType);
  else {
    w.StartObject();
    w.EndObject();
  }
  w.EndObject();
}

void message_head(Writer& w, const Ask& a, const Answer& ans) {
  key(w, "id");
  put(w, ans.id);
  key(w, "type");
  put(w, "message");
  key(w, "role");
  put(w, "assistant");
  key(w, "model");
  put(w, a.model);
}

std::string whole_body(const Ask& a, const Answer& ans, long long output) {
  return to_json([&](Writer& w) {
    w.StartObject();
    message_head(w, a, ans);
    key(w, "content");
    w.StartArray();
    if (a.thinking) thinking_block(w, ans);
    if (a.call) {
      tool_use_block(w, a, ans, true);
    } else {
      w.StartObject();
      key(w, "type");
      put(w, "text");
      key(w, "text");
      put(w, join(ans.words));
      w.EndObject();
    }
    w.EndArray();
    key(w, "stop_reason");
    put(w, ans.stop_reason);
    key(w, "stop_sequence");
    w.Null();
    usage(w, a, output);
    w.EndObject();
  });
}

// message_start, content_block_start, ping | a delta per step | block stop, message_delta, message_stop.
void stream_events(const Ask& a, const Answer& ans, long long output, int chunks, Reply& rep) {
  rep.first.push_back(event("message_start", [&](Writer& w) {
    key(w, "message");
    w.StartObject();
    message_head(w, a, ans);
    key(w, "content");
    w.StartArray();
    w.EndArray();
    key(w, "stop_reason");
    w.Null();
    key(w, "stop_sequence");
    w.Null();
    usage(w, a, 1);
    w.EndObject();
  }));
  auto block_starts = [&](int index) {
    return event("content_block_start", [&](Writer& w) {
      key(w, "index");
      w.Int(index);
      key(w, "content_block");
      if (index != ans.main) block_start(w, "thinking", "thinking");
      else if (a.call) tool_use_block(w, a, ans, false);
      else block_start(w, "text", "text");
    });
  };
  auto delta = [&](int index, std::string_view type, std::string_view field, std::string_view text) {
    return event("content_block_delta", [&](Writer& w) {
      key(w, "index");
      w.Int(index);
      key(w, "delta");
      w.StartObject();
      key(w, "type");
      put(w, type);
      key(w, field);
      put(w, text);
      w.EndObject();
    });
  };
  auto block_stop = [&](int index) {
    return event("content_block_stop", [&](Writer& w) {
      key(w, "index");
      w.Int(index);
    });
  };
  rep.first.push_back(block_starts(0));
  rep.first.push_back(event("ping", [](Writer&) {}));
  if (a.thinking)  // the thinking is the first content, at TTFT; then the answer's block opens
    rep.steps.push_back({delta(0, "thinking_delta", "thinking", ans.thinking),
                         delta(0, "signature_delta", "signature", "sig-" + ans.thinking.substr(0, ans.thinking.find(' '))),
                         block_stop(0), block_starts(ans.main)});
  if (a.call) {
    const std::string& args = ans.call_input;
    const std::size_t pieces = std::min<std::size_t>(static_cast<std::size_t>(std::max(chunks, 1)), args.size());
    for (std::size_t p = 0; p < pieces; ++p) {
      const std::size_t from = args.size() * p / pieces, to = args.size() * (p + 1) / pieces;
      rep.steps.push_back({delta(ans.main, "input_json_delta", "partial_json", args.substr(from, to - from))});
    }
  } else {
    for (std::size_t i = 0; i < ans.words.size(); ++i)
      rep.steps.push_back({delta(ans.main, "text_delta", "text", piece(ans.words, i))});
  }
  rep.tail.push_back(block_stop(ans.main));
  rep.tail.push_back(event("message_delta", [&](Writer& w) {
    key(w, "delta");
    w.StartObject();
    key(w, "stop_reason");
    put(w, ans.stop_reason);
    key(w, "stop_sequence");
    w.Null();
    w.EndObject();
    key(w, "usage");
    w.StartObject();
    key(w, "output_tokens");
    w.Int64(output);
    w.EndObject();
  }));
  rep.end_event = event("message_stop", [](Writer&) {});
  rep.tail.push_back(rep.end_event);
}

}  // namespace

std::string anthropic_error_body(int status, std::string_view message) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "type");
    put(w, "error");
    key(w, "error");
    w.StartObject();
    key(w, "type");
    put(w, error_type(status));
    key(w, "message");
    put(w, message);
    w.EndObject();
    w.EndObject();
  });
}

Reply messages_reply(const rapidjson::Document& doc, const ReplyContext& ctx) {
  const std::string_view api_key = header(ctx, "x-api-key");
  if (api_key.empty()) return refuse(401, "x-api-key header is required");
  if (!ctx.settings.api_key.empty() && api_key != ctx.settings.api_key) return refuse(401, "invalid x-api-key");
  if (header(ctx, "anthropic-version").empty()) return refuse(400, "anthropic-version: header is required");
  Ask a;
  if (auto err = check(doc, a); !err.empty()) return refuse(400, err);

  const int chunks = std::max(ctx.settings.chunks, 0);
  Answer ans;
  ans.id = "msg_" + ctx.name + "_" + std::to_string(ctx.seq);
  ans.words = words_of(ctx.name, chunks);
  ans.stop_reason = a.call ? "tool_use" : "end_turn";
  if (a.thinking) {
    ans.thinking = ctx.name + " thinks";
    ans.main = 1;
  }
  if (!a.call && static_cast<long long>(ans.words.size()) > a.max_tokens) {
    ans.words.resize(static_cast<std::size_t>(a.max_tokens));
    ans.stop_reason = "max_tokens";
  }
  if (a.call) {
    ans.call_id = "toolu_" + ctx.name + "_" + std::to_string(ctx.seq);
    ans.call_input = to_json([&](Writer& w) {
      w.StartObject();
      key(w, "mock");
      put(w, ctx.name);
      w.EndObject();
    });
  }
  const long long output = a.call ? chunks : static_cast<long long>(ans.words.size());

  Reply rep;
  rep.model = a.model;
  rep.stream = a.stream;
  rep.error_body = &anthropic_error_body;
  rep.error_event = event("error", [&](Writer& w) {
    key(w, "error");
    w.StartObject();
    key(w, "type");
    put(w, "overloaded_error");
    key(w, "message");
    put(w, "mock injected stream error (" + ctx.name + ")");
    w.EndObject();
  });
  if (a.stream) stream_events(a, ans, output, chunks, rep);
  else rep.body = whole_body(a, ans, output);
  return rep;
}

}  // namespace tailgate::mock

#include "behaviour.hpp"
#include "responses.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <optional>

#include "anthropic.hpp"
#include "json_writer.hpp"

#include "bedrock.hpp"
#include "google.hpp"
#include "media.hpp"

namespace tailgate::mock {
namespace {

std::string sse(const std::function<void(Writer&)>& fill) {
  std::string out = "data: ";
  out += to_json(fill);
  out += "\n\n";
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Words of a message content: a string or an array of {type, text} parts.
int content_words(const rapidjson::Value& content) {
  if (content.IsString()) return count_words({content.GetString(), content.GetStringLength()});
  int n = 0;
  if (content.IsArray())
    for (const auto& part : content.GetArray()) n += count_words(str_member(part, "text"));
  return n;
}

const char* error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408: return "timeout_error";
    case 409: return "conflict_error";
    case 422: return "invalid_request_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

Reply bad_request(std::string_view message) {
  Reply r;
  r.status = 400;
  r.body = error_body(400, message);
  return r;
}

std::string base64(const unsigned char* data, std::size_t len) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  for (std::size_t i = 0; i < len; i += 3) {
    std::uint32_t v = data[i] << 16;
    if (i + 1 < len) v |= data[i + 1] << 8;
    if (i + 2 < len) v |= data[i + 2];
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    out += i + 2 < len ? tbl[v & 63] : '=';
  }
  return out;
}

// Deterministic unit vector derived from the input text.
std::vector<float> embed(std::string_view text, int dims) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  std::vector<float> v(static_cast<std::size_t>(dims));
  double norm = 0;
  for (auto& x : v) {
    h += 0x9e3779b97f4a7c15ull;  // splitmix64
    std::uint64_t z = h;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    x = static_cast<float>(static_cast<double>(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    norm += double(x) * x;
  }
  norm = std::sqrt(norm);
  if (norm > 0)
    for (auto& x : v) x = static_cast<float>(x / norm);
  return v;
}

// Fields every request body shares.
struct Common {
  std::string id;
  std::string model;
  std::int64_t created = 0;
  bool stream = false;
  bool include_usage = false;
  int n = 1;
};

// Parses model/stream/n/stream_options; returns an error message or "".
std::string parse_common(const rapidjson::Value& doc, const Route& r, Common& c) {
  std::string_view model = str_member(doc, "model");
  if (!model.empty())
    c.model = model;
  else if (!r.deployment.empty())
    c.model = r.deployment;
  else
    return "you must provide a model parameter";
  if (auto it = doc.FindMember("stream"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsBool()) return "'stream' must be a boolean";
    c.stream = it->value.GetBool();
  }
  if (auto it = doc.FindMember("n"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt() || it->value.GetInt() < 1 || it->value.GetInt() > 128)
      return "'n' must be an integer between 1 and 128";
    c.n = std::min(it->value.GetInt(), 16);
  }
  if (auto it = doc.FindMember("stream_options"); it != doc.MemberEnd() && it->value.IsObject()) {
    auto iu = it->value.FindMember("include_usage");
    c.include_usage = iu != it->value.MemberEnd() && iu->value.IsBool() && iu->value.GetBool();
  }
  c.created = static_cast<std::int64_t>(std::time(nullptr));
  return {};
}

void head(Writer& w, const Common& c, std::string_view object) {
  key(w, "id");
  put(w, c.id);
  key(w, "object");
  put(w, object);
  key(w, "created");
  w.Int64(c.created);
  key(w, "model");
  put(w, c.model);
}

void usage(Writer& w, int prompt, int completion) {
  key(w, "usage");
  w.StartObject();
  key(w, "prompt_tokens");
  w.Int(prompt);
  key(w, "completion_tokens");
  w.Int(completion);
  key(w, "total_tokens");
  w.Int(prompt + completion);
  w.EndObject();
}

std::string usage_event(const Common& c, std::string_view object, int prompt, int completion) {
  return sse([&](Writer& w) {
    w.StartObject();
    head(w, c, object);
    key(w, "choices");
    w.StartArray();
    w.EndArray();
    usage(w, prompt, completion);
    w.EndObject();
  });
}

const std::string kDone = "data: [DONE]\n\n";

std::string concat(const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += p;
  return out;
}

bool wants_json_format(const rapidjson::Value& doc) {
  auto rf = doc.FindMember("response_format");
  if (rf == doc.MemberEnd()) return false;
  const auto type = str_member(rf->value, "type");
  return type == "json_object" || type == "json_schema";
}

// {"mock":NAME,"words":TEXT} cut into `chunks` pieces (at least one).
std::vector<std::string> json_pieces(const std::string& name, const std::string& text, int chunks) {
  const std::string json = to_json([&](Writer& w) {
    w.StartObject();
    key(w, "mock");
    put(w, name);
    key(w, "words");
    put(w, text);
    w.EndObject();
  });
  const std::size_t n = static_cast<std::size_t>(std::max(1, chunks));
  std::vector<std::string> out;
  for (std::size_t p = 0; p < n; ++p) out.push_back(json.substr(json.size() * p / n, json.size() * (p + 1) / n - json.size() * p / n));
  return out;
}

// ---- chat completions -------------------------------------------------------

struct ToolCall {
  std::string id, name, arguments;
};

// One chat.completion.chunk event for choice `index` with the given delta.
std::string chat_chunk(const Common& c, int index, const std::function<void(Writer&)>& delta,
                       const char* finish) {
  return sse([&](Writer& w) {
    w.StartObject();
    head(w, c, "chat.completion.chunk");
    key(w, "system_fingerprint");
    put(w, "fp_mock");
    key(w, "choices");
    w.StartArray();
    w.StartObject();
    key(w, "index");
    w.Int(index);
    key(w, "delta");
    w.StartObject();
    delta(w);
    w.EndObject();
    key(w, "logprobs");
    w.Null();
    key(w, "finish_reason");
    if (finish)
      put(w, finish);
    else
      w.Null();
    w.EndObject();
    w.EndArray();
    w.EndObject();
  });
}

void tool_call_delta(Writer& w, const ToolCall* head_of, std::string_view args) {
  key(w, "tool_calls");
  w.StartArray();
  w.StartObject();
  key(w, "index");
  w.Int(0);
  if (head_of) {
    key(w, "id");
    put(w, head_of->id);
    key(w, "type");
    put(w, "function");
  }
  key(w, "function");
  w.StartObject();
  if (head_of) {
    key(w, "name");
    put(w, head_of->name);
  }
  key(w, "arguments");
  put(w, args);
  w.EndObject();
  w.EndObject();
  w.EndArray();
}

Reply chat_reply(const rapidjson::Document& doc, const Route& r, const ReplyContext& ctx) {
  Common c;
  if (auto err = parse_common(doc, r, c); !err.empty()) return bad_request(err);
  auto msgs = doc.FindMember("messages");
  if (msgs == doc.MemberEnd() || !msgs->value.IsArray() || msgs->value.Empty())
    return bad_request("'messages' must be a non-empty array");
  int prompt_tokens = 0;
  for (const auto& m : msgs->value.GetArray()) {
    if (!m.IsObject() || str_member(m, "role").empty())
      return bad_request("each message must be an object with a 'role'");
    if (auto ct = m.FindMember("content"); ct != m.MemberEnd()) prompt_tokens += content_words(ct->value);
  }
  prompt_tokens = std::max(prompt_tokens, 1);
  std::string_view last_role = str_member(msgs->value[msgs->value.Size() - 1], "role");

  // Tool call unless tools are absent, disabled, or the tool result is back.
  std::optional<ToolCall> call;
  auto tools = doc.FindMember("tools");
  if (tools != doc.MemberEnd() && tools->value.IsArray() && !tools->value.Empty() && last_role != "tool" &&
      last_role != "function") {
    std::string name;
    if (auto tc = doc.FindMember("tool_choice"); tc != doc.MemberEnd()) {
      if (tc->value.IsString() && std::string_view(tc->value.GetString()) == "none") name = "-";
      if (tc->value.IsObject() && tc->value.HasMember("function"))
        name = str_member(tc->value["function"], "name");
    }
    if (name != "-") {
      if (name.empty() && tools->value[0].IsObject() && tools->value[0].HasMember("function"))
        name = str_member(tools->value[0]["function"], "name");
      if (name.empty()) name = "tool";
      call = ToolCall{"call_" + ctx.name + "_" + std::to_string(ctx.seq), name,
                      to_json([&](Writer& w) {
                        w.StartObject();
                        key(w, "mock");
                        put(w, ctx.name);
                        w.EndObject();
                      })};
    }
  }

  const int chunks = std::max(ctx.settings.chunks, 0);
  auto words = words_of(ctx.name, chunks);
  // response_format json_object / json_schema: the words as {"mock","words"}, streamed in pieces.
  const bool structured = wants_json_format(doc);
  if (structured) words = json_pieces(ctx.name, join(words), chunks);
  auto text_of = [&](std::size_t i) { return structured ? words[i] : piece(words, i); };
  const int completion_tokens = chunks * c.n;
  const char* finish = call ? "tool_calls" : "stop";
  c.id = "chatcmpl-" + ctx.name + "-" + std::to_string(ctx.seq);

  Reply rep;
  rep.model = c.model;
  rep.stream = c.stream;
  if (!c.stream) {
    const std::string text = structured ? concat(words) : join(words);
    rep.body = to_json([&](Writer& w) {
      w.StartObject();
      head(w, c, "chat.completion");
      key(w, "system_fingerprint");
      put(w, "fp_mock");
      key(w, "choices");
      w.StartArray();
      for (int k = 0; k < c.n; ++k) {
        w.StartObject();
        key(w, "index");
        w.Int(k);
        key(w, "message");
        w.StartObject();
        key(w, "role");
        put(w, "assistant");
        key(w, "content");
        if (call) {
          w.Null();
          key(w, "tool_calls");
          w.StartArray();
          w.StartObject();
          key(w, "id");
          put(w, call->id);
          key(w, "type");
          put(w, "function");
          key(w, "function");
          w.StartObject();
          key(w, "name");
          put(w, call->name);
          key(w, "arguments");
          put(w, call->arguments);
          w.EndObject();
          w.EndObject();
          w.EndArray();
        } else {
          put(w, text);
        }
        key(w, "refusal");
        w.Null();
        w.EndObject();
        key(w, "logprobs");
        w.Null();
        key(w, "finish_reason");
        put(w, finish);
        w.EndObject();
      }
      w.EndArray();
      usage(w, prompt_tokens, completion_tokens);
      w.EndObject();
    });
    return rep;
  }

  // Stream: role chunk, then timed steps, then finish (+ usage) + [DONE].
  for (int k = 0; k < c.n; ++k)
    rep.first.push_back(chat_chunk(c, k, [&](Writer& w) {
      key(w, "role");
      put(w, "assistant");
      key(w, "content");
      if (call) w.Null(); else put(w, "");
      key(w, "refusal");
      w.Null();
    }, nullptr));

  if (call) {
    // Step 0 names the call; the arguments follow in up to chunks-1 pieces.
    const std::string& args = call->arguments;
    const std::size_t pieces = chunks <= 1 ? 0 : std::min<std::size_t>(chunks - 1, args.size());
    std::vector<std::string> parts;
    if (pieces == 0) parts.push_back(args);
    for (std::size_t p = 0; p < pieces; ++p) {
      std::size_t from = args.size() * p / pieces, to = args.size() * (p + 1) / pieces;
      parts.push_back(args.substr(from, to - from));
    }
    std::vector<std::string> step;
    for (int k = 0; k < c.n; ++k)
      step.push_back(chat_chunk(c, k, [&](Writer& w) {
        tool_call_delta(w, &*call, pieces == 0 ? std::string_view(args) : std::string_view());
      }, nullptr));
    rep.steps.push_back(std::move(step));
    for (std::size_t p = 0; pieces && p < parts.size(); ++p) {
      step.clear();
      for (int k = 0; k < c.n; ++k)
        step.push_back(chat_chunk(c, k, [&](Writer& w) { tool_call_delta(w, nullptr, parts[p]); }, nullptr));
      rep.steps.push_back(std::move(step));
    }
  } else {
    for (std::size_t i = 0; i < words.size(); ++i) {
      std::vector<std::string> step;
      const std::string text = text_of(i);
      for (int k = 0; k < c.n; ++k)
        step.push_back(chat_chunk(c, k, [&](Writer& w) {
          key(w, "content");
          put(w, text);
        }, nullptr));
      rep.steps.push_back(std::move(step));
    }
  }
  for (int k = 0; k < c.n; ++k) rep.tail.push_back(chat_chunk(c, k, [](Writer&) {}, finish));
  if (c.include_usage) rep.tail.push_back(usage_event(c, "chat.completion.chunk", prompt_tokens, completion_tokens));
  rep.tail.push_back(kDone);
  return rep;
}

// ---- legacy completions -------------------------------------------------------

std::string text_choice_json(const Common& c, int index, std::string_view text, const char* finish) {
  return to_json([&](Writer& w) {
    w.StartObject();
    head(w, c, "text_completion");
    key(w, "choices");
    w.StartArray();
    w.StartObject();
    key(w, "text");
    put(w, text);
    key(w, "index");
    w.Int(index);
    key(w, "logprobs");
    w.Null();
    key(w, "finish_reason");
    if (finish) put(w, finish); else w.Null();
    w.EndObject();
    w.EndArray();
    w.EndObject();
  });
}

Reply completion_reply(const rapidjson::Document& doc, const Route& r, const ReplyContext& ctx) {
  Common c;
  if (auto err = parse_common(doc, r, c); !err.empty()) return bad_request(err);
  int prompt_tokens = 0;
  if (auto p = doc.FindMember("prompt"); p != doc.MemberEnd()) {
    const auto& v = p->value;
    if (v.IsString()) {
      prompt_tokens = count_words({v.GetString(), v.GetStringLength()});
    } else if (v.IsArray()) {
      for (const auto& e : v.GetArray()) {
        if (e.IsString()) prompt_tokens += count_words({e.GetString(), e.GetStringLength()});
        else if (e.IsArray()) prompt_tokens += static_cast<int>(e.Size());
        else if (e.IsInt()) prompt_tokens += 1;
        else return bad_request("'prompt' must be a string, a list of strings or a list of tokens");
      }
    } else if (!v.IsNull()) {
      return bad_request("'prompt' must be a string, a list of strings or a list of tokens");
    }
  }
  prompt_tokens = std::max(prompt_tokens, 1);
  const int chunks = std::max(ctx.settings.chunks, 0);
  const auto words = words_of(ctx.name, chunks);
  const int completion_tokens = chunks * c.n;
  c.id = "cmpl-" + ctx.name + "-" + std::to_string(ctx.seq);

  Reply rep;
  rep.model = c.model;
  rep.stream = c.stream;
  if (!c.stream) {
    const std::string text = join(words);
    rep.body = to_json([&](Writer& w) {
      w.StartObject();
      head(w, c, "text_completion");
      key(w, "choices");
      w.StartArray();
      for (int k = 0; k < c.n; ++k) {
        w.StartObject();
        key(w, "text");
        put(w, text);
        key(w, "index");
        w.Int(k);
        key(w, "logprobs");
        w.Null();
        key(w, "finish_reason");
        put(w, "stop");
        w.EndObject();
      }
      w.EndArray();
      usage(w, prompt_tokens, completion_tokens);
      w.EndObject();
    });
    return rep;
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::vector<std::string> step;
    for (int k = 0; k < c.n; ++k)
      step.push_back("data: " + text_choice_json(c, k, piece(words, i), nullptr) + "\n\n");
    rep.steps.push_back(std::move(step));
  }
  for (int k = 0; k < c.n; ++k) rep.tail.push_back("data: " + text_choice_json(c, k, "", "stop") + "\n\n");
  if (c.include_usage) rep.tail.push_back(usage_event(c, "text_completion", prompt_tokens, completion_tokens));
  rep.tail.push_back(kDone);
  return rep;
}

// ---- embeddings ----------------------------------------------------------------

Reply embeddings_reply(const rapidjson::Document& doc, const Route& r) {
  Common c;
  if (auto err = parse_common(doc, r, c); !err.empty()) return bad_request(err);
  auto in = doc.FindMember("input");
  if (in == doc.MemberEnd()) return bad_request("'input' is required");
  // Each item: the text to hash and its token count.
  std::vector<std::pair<std::string, int>> items;
  const auto& v = in->value;
  auto tokens_text = [](const rapidjson::Value& arr) {
    std::string s;
    for (const auto& t : arr.GetArray()) s += t.IsInt() ? std::to_string(t.GetInt()) + "," : "?,";
    return s;
  };
  if (v.IsString()) {
    items.emplace_back(std::string(v.GetString(), v.GetStringLength()),
                       count_words({v.GetString(), v.GetStringLength()}));
  } else if (v.IsArray() && !v.Empty()) {
    if (v[0].IsInt()) {
      items.emplace_back(tokens_text(v), static_cast<int>(v.Size()));
    } else {
      for (const auto& e : v.GetArray()) {
        if (e.IsString())
          items.emplace_back(std::string(e.GetString(), e.GetStringLength()),
                             count_words({e.GetString(), e.GetStringLength()}));
        else if (e.IsArray())
          items.emplace_back(tokens_text(e), static_cast<int>(e.Size()));
        else
          return bad_request("'input' items must be strings or token arrays");
      }
    }
  } else {
    return bad_request("'input' must be a non-empty string or array");
  }
  int dims = 8;
  if (auto d = doc.FindMember("dimensions"); d != doc.MemberEnd() && !d->value.IsNull()) {
    if (!d->value.IsInt() || d->value.GetInt() < 1 || d->value.GetInt() > 4096)
      return bad_request("'dimensions' must be an integer between 1 and 4096");
    dims = d->value.GetInt();
  }
  const bool b64 = str_member(doc, "encoding_format") == "base64";
  int prompt_tokens = 0;
  for (const auto& it : items) prompt_tokens += std::max(it.second, 1);

  Reply rep;
  rep.model = c.model;
  rep.body = to_json([&](Writer& w) {
    w.StartObject();
    key(w, "object");
    put(w, "list");
    key(w, "data");
    w.StartArray();
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto vec = embed(items[i].first, dims);
      w.StartObject();
      key(w, "object");
      put(w, "embedding");
      key(w, "index");
      w.Int(static_cast<int>(i));
      key(w, "embedding");
      if (b64) {
        put(w, base64(reinterpret_cast<const unsigned char*>(vec.data()), vec.size() * sizeof(float)));
      } else {
        w.StartArray();
        for (float x : vec) w.Double(x);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    key(w, "model");
    put(w, c.model);
    key(w, "usage");
    w.StartObject();
    key(w, "prompt_tokens");
    w.Int(prompt_tokens);
    key(w, "total_tokens");
    w.Int(prompt_tokens);
    w.EndObject();
    w.EndObject();
  });
  return rep;
}

// ---- models ------------------------------------------------------------------------

void model_object(Writer& w, std::string_view id) {
  w.StartObject();
  key(w, "id");
  put(w, id);
  key(w, "object");
  put(w, "model");
  key(w, "created");
  w.Int64(1700000000);
  key(w, "owned_by");
  put(w, "tailgate-mock");
  w.EndObject();
}

Reply models_reply(const Route& r, const ReplyContext& ctx) {
  Reply rep;
  const auto& models = ctx.settings.models;
  if (r.endpoint == Endpoint::model) {
    if (std::find(models.begin(), models.end(), r.model_id) == models.end()) {
      rep.status = 404;
      rep.body = error_body(404, "The model '" + r.model_id + "' does not exist");
      return rep;
    }
    rep.body = to_json([&](Writer& w) { model_object(w, r.model_id); });
    return rep;
  }
  rep.body = to_json([&](Writer& w) {
    w.StartObject();
    key(w, "object");
    put(w, "list");
    key(w, "data");
    w.StartArray();
    for (const auto& m : models) model_object(w, m);
    w.EndArray();
    w.EndObject();
  });
  return rep;
}

// ---- settings (de)serialisation ------------------------------------------------------

bool read_number(const rapidjson::Value& v, double& out, bool duration) {
  if (v.IsNumber()) {
    out = v.GetDouble();
    return std::isfinite(out);
  }
  if (duration && v.IsString()) return parse_duration_ms({v.GetString(), v.GetStringLength()}, out);
  return false;
}

bool read_int(const rapidjson::Value& v, int& out) {
  if (v.IsInt()) {
    out = v.GetInt();
    return true;
  }
  if (v.IsDouble() && std::floor(v.GetDouble()) == v.GetDouble() && std::abs(v.GetDouble()) < 1e9) {
    out = static_cast<int>(v.GetDouble());
    return true;
  }
  return false;
}

}  // namespace

int count_words(std::string_view s) {
  int n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::vector<std::string> words_of(const std::string& name, int chunks) {
  std::vector<std::string> words;
  for (int i = 0; i < chunks; ++i) words.push_back(name + "-" + std::to_string(i));
  return words;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i) out += ' ';
    out += words[i];
  }
  return out;
}

// Piece i of the streamed text: the word, with a separating space after the first.
std::string piece(const std::vector<std::string>& words, std::size_t i) {
  return i ? " " + words[i] : words[i];
}

bool parse_duration_ms(std::string_view text, double& out_ms) {
  std::string s(text);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v) || v < 0) return false;
  std::string_view unit(end);
  if (unit.empty() || unit == "ms") out_ms = v;
  else if (unit == "s") out_ms = v * 1000;
  else if (unit == "us") out_ms = v / 1000;
  else if (unit == "m" || unit == "min") out_ms = v * 60000;
  else return false;
  return true;
}

std::string settings_to_json(const Settings& s) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "ttft_ms"); w.Double(s.ttft_ms);
    key(w, "ttft_dist"); put(w, s.ttft_dist);
    key(w, "ttft_max_ms"); w.Double(s.ttft_max_ms);
    key(w, "ttft_sigma"); w.Double(s.ttft_sigma);
    key(w, "chunk_delay_ms"); w.Double(s.chunk_delay_ms);
    key(w, "chunks"); w.Int(s.chunks);
    key(w, "straggler_prob"); w.Double(s.straggler_prob);
    key(w, "straggler_mult"); w.Double(s.straggler_mult);
    key(w, "fail_rate"); w.Double(s.fail_rate);
    key(w, "fail_status"); w.Int(s.fail_status);
    key(w, "fail_delay_ms"); w.Double(s.fail_delay_ms);
    key(w, "retry_after"); w.Double(s.retry_after);
    key(w, "retry_after_ms"); w.Double(s.retry_after_ms);
    key(w, "reset_before"); w.Double(s.reset_before);
    key(w, "reset_mid_stream_after"); w.Int(s.reset_mid_stream_after);
    key(w, "stall"); w.Bool(s.stall);
    key(w, "stall_mid_stream_after"); w.Int(s.stall_mid_stream_after);
    key(w, "headers_at_ttft"); w.Bool(s.headers_at_ttft);
    key(w, "reset_after_headers"); w.Bool(s.reset_after_headers);
    key(w, "garbage"); put(w, s.garbage);
    key(w, "garbage_after"); w.Int(s.garbage_after);
    key(w, "huge_body_mib"); w.Double(s.huge_body_mib);
    key(w, "api_key"); put(w, s.api_key);
    key(w, "error_event_after"); w.Int(s.error_event_after);
    key(w, "aws_access_key_id"); put(w, s.aws_access_key_id);
    key(w, "aws_secret_access_key"); put(w, s.aws_secret_access_key);
    key(w, "aws_session_token"); put(w, s.aws_session_token);
    key(w, "google_public_key"); put(w, s.google_public_key);
    key(w, "token_ttl_s"); w.Double(s.token_ttl_s);
    key(w, "models");
    w.StartArray();
    for (const auto& m : s.models) put(w, m);
    w.EndArray();
    w.EndObject();
  });
}

bool valid_garbage_mode(std::string_view mode) {
  for (std::string_view m : {"", "non_json", "html_error", "bad_sse", "truncated_chunked", "huge_body", "no_done"})
    if (mode == m) return true;
  return false;
}

std::string validate_settings(const Settings& s) {
  auto prob = [](double p) { return p >= 0 && p <= 1; };
  if (s.ttft_ms < 0 || s.ttft_max_ms < 0 || s.chunk_delay_ms < 0 || s.fail_delay_ms < 0)
    return "durations must be >= 0";
  if (s.ttft_dist != "fixed" && s.ttft_dist != "uniform" && s.ttft_dist != "lognormal")
    return "ttft_dist must be fixed, uniform or lognormal";
  if (s.ttft_sigma < 0) return "ttft_sigma must be >= 0";
  if (s.chunks < 0 || s.chunks > 100000) return "chunks must be between 0 and 100000";
  if (!prob(s.straggler_prob) || !prob(s.fail_rate) || !prob(s.reset_before))
    return "probabilities must be between 0 and 1";
  if (s.straggler_mult < 0) return "straggler_mult must be >= 0";
  if (s.fail_status < 100 || s.fail_status > 599) return "fail_status must be an HTTP status code";
  if (s.models.empty()) return "models must not be empty";
  if (!valid_garbage_mode(s.garbage))
    return "garbage must be one of non_json, html_error, bad_sse, truncated_chunked, huge_body, no_done (or \"\")";
  if (s.garbage_after < 0) return "garbage_after must be >= 0";
  if (s.huge_body_mib < 0 || s.huge_body_mib > 1024) return "huge_body_mib must be between 0 and 1024";
  return {};
}

std::string merge_settings(Settings& s, const rapidjson::Value& patch) {
  if (!patch.IsObject()) return "config must be a JSON object";
  Settings n = s;
  for (const auto& m : patch.GetObject()) {
    const std::string_view k(m.name.GetString(), m.name.GetStringLength());
    const auto& v = m.value;
    bool ok = true;
    // -1 (or null) switches an optional knob off.
    auto opt_num = [&](double& out) {
      if (v.IsNull()) out = -1;
      else ok = read_number(v, out, false);
    };
    auto opt_int = [&](int& out) {
      if (v.IsNull()) out = -1;
      else ok = read_int(v, out);
    };
    if (k == "ttft_ms" || k == "ttft") ok = read_number(v, n.ttft_ms, true);
    else if (k == "ttft_dist") ok = v.IsString() && (n.ttft_dist = v.GetString(), true);
    else if (k == "ttft_max_ms" || k == "ttft_max") ok = read_number(v, n.ttft_max_ms, true);
    else if (k == "ttft_sigma") ok = read_number(v, n.ttft_sigma, false);
    else if (k == "chunk_delay_ms" || k == "chunk_delay") ok = read_number(v, n.chunk_delay_ms, true);
    else if (k == "chunks") ok = read_int(v, n.chunks);
    else if (k == "straggler_prob") ok = read_number(v, n.straggler_prob, false);
    else if (k == "straggler_mult") ok = read_number(v, n.straggler_mult, false);
    else if (k == "fail_rate") ok = read_number(v, n.fail_rate, false);
    else if (k == "fail_status") ok = read_int(v, n.fail_status);
    else if (k == "fail_delay_ms" || k == "fail_delay") ok = read_number(v, n.fail_delay_ms, true);
    else if (k == "retry_after") opt_num(n.retry_after);
    else if (k == "retry_after_ms") opt_num(n.retry_after_ms);
    else if (k == "reset_before") ok = read_number(v, n.reset_before, false);
    else if (k == "reset_mid_stream_after") opt_int(n.reset_mid_stream_after);
    else if (k == "stall") ok = v.IsBool() && (n.stall = v.GetBool(), true);
    else if (k == "stall_mid_stream_after") opt_int(n.stall_mid_stream_after);
    else if (k == "headers_at_ttft") ok = v.IsBool() && (n.headers_at_ttft = v.GetBool(), true);
    else if (k == "reset_after_headers") ok = v.IsBool() && (n.reset_after_headers = v.GetBool(), true);
    else if (k == "garbage") {
      if (v.IsNull()) n.garbage.clear();
      else ok = v.IsString() && (n.garbage = v.GetString(), true);
    }
    else if (k == "garbage_after") ok = read_int(v, n.garbage_after);
    else if (k == "huge_body_mib") ok = read_number(v, n.huge_body_mib, false);
    else if (k == "api_key") ok = v.IsString() && (n.api_key = v.GetString(), true);
    else if (k == "error_event_after") opt_int(n.error_event_after);
    else if (k == "aws_access_key_id") ok = v.IsString() && (n.aws_access_key_id = v.GetString(), true);
    else if (k == "aws_secret_access_key") ok = v.IsString() && (n.aws_secret_access_key = v.GetString(), true);
    else if (k == "aws_session_token") ok = v.IsString() && (n.aws_session_token = v.GetString(), true);
    else if (k == "google_public_key") ok = v.IsString() && (n.google_public_key = v.GetString(), true);
    else if (k == "token_ttl_s") ok = read_number(v, n.token_ttl_s, false) && n.token_ttl_s >= 1;
    else if (k == "models" || k == "model_list") {
      std::vector<std::string> models;
      if (v.IsArray()) {
        for (const auto& e : v.GetArray()) {
          if (!e.IsString()) ok = false;
          else models.emplace_back(e.GetString(), e.GetStringLength());
        }
      } else {
        ok = false;
      }
      n.models = std::move(models);
    } else {
      return "unknown config key '" + std::string(k) + "'";
    }
    if (!ok) return "bad value for '" + std::string(k) + "'";
  }
  if (auto err = validate_settings(n); !err.empty()) return err;
  s = std::move(n);
  return {};
}

Plan sample_plan(const Settings& s, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Plan p;
  p.reset_before = s.reset_before > 0 && u(rng) < s.reset_before;
  p.fail = s.fail_rate > 0 && u(rng) < s.fail_rate;
  double t = s.ttft_ms;
  if (s.ttft_dist == "uniform") {
    const double hi = std::max(s.ttft_max_ms, s.ttft_ms);
    t = s.ttft_ms + (hi - s.ttft_ms) * u(rng);
  } else if (s.ttft_dist == "lognormal" && s.ttft_ms > 0) {
    std::lognormal_distribution<double> ln(std::log(s.ttft_ms), s.ttft_sigma);
    t = ln(rng);
    if (s.ttft_max_ms > 0) t = std::min(t, s.ttft_max_ms);
  }
  p.straggler = s.straggler_prob > 0 && u(rng) < s.straggler_prob;
  if (p.straggler) t *= s.straggler_mult;
  p.ttft_ms = t;
  return p;
}

Route route(std::string_view method, std::string_view path) {
  Route r;
  if (method == "POST" && bedrock::match(path, r.model_id, r.stream)) {
    r.endpoint = Endpoint::converse;
    return r;
  }
  if (method == "POST" && google::is_token_path(path)) {
    r.endpoint = Endpoint::token;
    return r;
  }
  path = google::strip_vertex_prefix(path, r.vertex);
  constexpr std::string_view azure = "/openai/deployments/";
  if (starts_with(path, azure)) {
    std::string_view rest = path.substr(azure.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return r;
    r.deployment = rest.substr(0, slash);
    path = rest.substr(slash);
  } else if (starts_with(path, "/openai/")) {
    path = path.substr(7);  // Azure's resource-level APIs (the Responses API)
    if (starts_with(path, "/v1/")) path = path.substr(3);
  } else if (starts_with(path, "/v1/")) {
    path = path.substr(3);
  }
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const bool post = method == "POST", get = method == "GET";
  if (post && path == "/chat/completions") r.endpoint = Endpoint::chat;
  else if (post && path == "/completions") r.endpoint = Endpoint::completions;
  else if (post && path == "/embeddings") r.endpoint = Endpoint::embeddings;
  else if (post && path == "/responses") r.endpoint = Endpoint::responses;
  else if (post && path == "/messages") r.endpoint = Endpoint::messages;
  else if (post && path == "/moderations") r.endpoint = Endpoint::moderations;
  else if (post && path == "/images/generations") r.endpoint = Endpoint::images;
  else if (post && path == "/images/edits") r.endpoint = Endpoint::image_edits;
  else if (post && path == "/images/variations") r.endpoint = Endpoint::image_variations;
  else if (post && path == "/audio/speech") r.endpoint = Endpoint::speech;
  else if (post && path == "/audio/transcriptions") r.endpoint = Endpoint::transcriptions;
  else if (post && path == "/audio/translations") r.endpoint = Endpoint::translations;
  else if (get && path == "/models") r.endpoint = Endpoint::models;
  else if (get && starts_with(path, "/models/") && path.size() > 8) {
    r.endpoint = Endpoint::model;
    r.model_id = path.substr(8);
  }
  return r;
}

Reply build_reply(const Route& r, std::string_view body, const ReplyContext& ctx) {
  if (r.endpoint == Endpoint::models || r.endpoint == Endpoint::model) return models_reply(r, ctx);
  if (r.endpoint == Endpoint::unknown) {
    Reply rep;
    rep.status = 404;
    rep.body = error_body(404, "unknown route");
    return rep;
  }
  if (r.endpoint == Endpoint::converse) return bedrock::converse_reply(body, r.model_id, r.stream, ctx);
  if (r.endpoint == Endpoint::token) return google::token_reply(ctx.settings, body);
  if (r.endpoint == Endpoint::transcriptions || r.endpoint == Endpoint::translations)
    return transcription_reply(body, r.endpoint == Endpoint::translations, ctx);
  if (r.endpoint == Endpoint::image_edits || r.endpoint == Endpoint::image_variations)
    return image_form_reply(body, r.endpoint == Endpoint::image_variations, ctx);
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject())
    return bad_request("We could not parse the JSON body of your request.");
  Reply rep;
  switch (r.endpoint) {
    case Endpoint::messages: return messages_reply(doc, ctx);  // Anthropic's shapes throughout
    case Endpoint::chat: rep = chat_reply(doc, r, ctx); break;
    case Endpoint::completions: rep = completion_reply(doc, r, ctx); break;
    case Endpoint::responses: return responses_reply(doc, r, ctx);
    case Endpoint::moderations: return moderation_reply(doc, ctx);
    case Endpoint::images: return image_reply(doc, ctx);
    case Endpoint::speech: return speech_reply(doc, ctx);
    default: return embeddings_reply(doc, r);
  }
  // error_event_after: what OpenAI sends for a failure inside a stream.
  rep.error_event = "data: " + error_body(500, "mock injected stream error (" + ctx.name + ")") + "\n\n";
  return rep;
}

Denial authorize(const Route& r, const Settings& s, std::string_view method, std::string_view target,
                 const Headers& headers, std::string_view body) {
  if (r.endpoint == Endpoint::converse) {
    const std::string why = bedrock::check_auth(s, method, target, headers, body, std::chrono::system_clock::now());
    if (!why.empty()) return {403, bedrock::error_body(403, why)};
  } else if (r.vertex) {
    const std::string why = google::check_token(s, headers);
    if (!why.empty()) return {401, google::error_body(401, why)};
  }
  return {};
}

std::string error_body(int status, std::string_view message) {
  return error_object([&](Writer& w) {
    key(w, "message");
    put(w, message);
    key(w, "type");
    put(w, error_type(status));
    key(w, "param");
    w.Null();
    key(w, "code");
    if (status == 429) put(w, "rate_limit_exceeded");
    else if (status == 401) put(w, "invalid_api_key");
    else w.Null();
  });
}

}  // namespace tailgate::mock

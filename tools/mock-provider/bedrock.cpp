#include "bedrock.hpp"

#include "json_writer.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>

namespace tailgate::mock::bedrock {
namespace {

// ---- SigV4, as AWS checks it: rebuilt from the request as received ---------------

std::string to_hex(const unsigned char* p, std::size_t n) {
  std::string out;
  char buf[3];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    out += buf;
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return to_hex(d, sizeof d);
}

std::string hmac(std::string_view key, std::string_view msg) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), d, &n);
  return std::string(reinterpret_cast<char*>(d), n);
}

// Each path segment percent-encoded again: the server side of "non-S3 services sign the path double-encoded".
std::string encode_path(std::string_view path) {
  std::string out;
  char buf[4];
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out.empty() ? "/" : out;
}

struct Authorization {
  std::string key_id, date, region, service, signed_headers, signature;
};

// "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=a;b, Signature=hex"
std::optional<Authorization> parse_authorization(std::string_view v) {
  constexpr std::string_view kAlg = "AWS4-HMAC-SHA256 ";
  if (v.substr(0, kAlg.size()) != kAlg) return std::nullopt;
  v.remove_prefix(kAlg.size());
  std::map<std::string, std::string, std::less<>> parts;
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos) parts[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
  }
  Authorization a;
  const std::string& cred = parts["Credential"];
  std::string fields[5];
  std::size_t from = 0;
  for (int i = 0; i < 5; ++i) {
    const std::size_t slash = cred.find('/', from);
    fields[i] = cred.substr(from, slash == std::string::npos ? std::string::npos : slash - from);
    if (slash == std::string::npos && i < 4) return std::nullopt;
    from = slash + 1;
  }
  if (fields[4] != "aws4_request") return std::nullopt;
  a.key_id = fields[0], a.date = fields[1], a.region = fields[2], a.service = fields[3];
  a.signed_headers = parts["SignedHeaders"];
  a.signature = parts["Signature"];
  if (a.signed_headers.empty() || a.signature.empty()) return std::nullopt;
  return a;
}

std::string header_value(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::string trimmed(std::string v) {
  const auto b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
}

// Seconds between an x-amz-date and `now`; nullopt when it does not parse.
std::optional<long> skew_seconds(const std::string& amz_date, std::chrono::system_clock::time_point now) {
  std::tm tm{};
  if (amz_date.size() != 16 || std::sscanf(amz_date.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon,
                                           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const long then = static_cast<long>(timegm(&tm));
  return std::labs(static_cast<long>(std::chrono::system_clock::to_time_t(now)) - then);
}

std::string verify_sigv4(const Settings& s, std::string_view method, std::string_view target, const Headers& headers,
                         std::string_view body, std::chrono::system_clock::time_point now) {
  const auto auth = parse_authorization(header_value(headers, "authorization"));
  if (!auth) return "Authorization header is missing or not AWS4-HMAC-SHA256";
  if (auth->key_id != s.aws_access_key_id) return "The security token included in the request is invalid.";
  const std::string amz_date = header_value(headers, "x-amz-date");
  const auto skew = skew_seconds(amz_date, now);
  if (!skew || *skew > 300 || amz_date.substr(0, 8) != auth->date) return "Signature expired or X-Amz-Date invalid";
  if (!s.aws_session_token.empty() && header_value(headers, "x-amz-security-token") != s.aws_session_token)
    return "The security token included in the request is invalid.";
  std::string canonical_headers;
  std::size_t from = 0;
  while (from <= auth->signed_headers.size()) {
    std::size_t semi = auth->signed_headers.find(';', from);
    if (semi == std::string::npos) semi = auth->signed_headers.size();
    const std::string name = auth->signed_headers.substr(from, semi - from);
    canonical_headers += name + ':' + trimmed(header_value(headers, name)) + '\n';
    from = semi + 1;
  }
  if (auth->signed_headers.find("host") == std::string::npos) return "the host header must be signed";
  const std::size_t q = target.find('?');
  const std::string creq = std::string(method) + '\n' + encode_path(target.substr(0, q)) + '\n' +
                           std::string(q == std::string_view::npos ? "" : target.substr(q + 1)) + '\n' +
                           canonical_headers + '\n' + auth->signed_headers + '\n' + sha256_hex(body);
  const std::string scope = auth->date + '/' + auth->region + '/' + auth->service + "/aws4_request";
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + amz_date + '\n' + scope + '\n' + sha256_hex(creq);
  std::string k = hmac("AWS4" + s.aws_secret_access_key, auth->date);
  for (const std::string& part : {auth->region, auth->service, std::string("aws4_request")}) k = hmac(k, part);
  const std::string mac = hmac(k, to_sign);
  if (to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size()) != auth->signature)
    return "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
           "Access Key and signing method.";
  return {};
}

// ---- event-stream frames -----------------------------------------------------------

void be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

std::uint32_t crc(std::string_view bytes) {
  boost::crc_32_type c;
  c.process_bytes(bytes.data(), bytes.size());
  return c.checksum();
}

std::string event(const std::string& type, const std::string& json) {
  return frame({{":event-type", type}, {":content-type", "application/json"}, {":message-type", "event"}}, json);
}

// ---- Converse ------------------------------------------------------------------------

Reply refuse(std::string_view message) {
  Reply r;
  r.status = 400;
  r.body = error_body(400, message);
  return r;
}

// What a Converse request asks for, after the checks the real API makes.
struct Ask {
  int input_tokens = 0;
  std::string tool;  // the tool to call, "" for text
  std::string error;
};

std::string check_blocks(const rapidjson::Value& content, bool& tool_blocks, int& words) {
  if (!content.IsArray() || content.Empty()) return "each message needs a non-empty content array";
  for (const auto& b : content.GetArray()) {
    if (b.HasMember("text")) {
      const std::string_view t = str_member(b, "text");
      if (t.find_first_not_of(" \t\n") == std::string_view::npos) return "text content blocks must be non-empty";
      words += count_words(t);
    } else if (b.HasMember("toolUse") || b.HasMember("toolResult")) {
      tool_blocks = true;
    } else if (b.HasMember("image")) {
      const auto& img = b["image"];
      const std::string_view f = str_member(img, "format");
      if (f != "png" && f != "jpeg" && f != "gif" && f != "webp") return "image format must be png, jpeg, gif or webp";
      if (!img.HasMember("source") || str_member(img["source"], "bytes").empty()) return "image source bytes missing";
    } else {
      return "unsupported content block";
    }
  }
  return {};
}

Ask read_ask(const rapidjson::Document& doc) {
  Ask a;
  auto msgs = doc.FindMember("messages");
  if (msgs == doc.MemberEnd() || !msgs->value.IsArray() || msgs->value.Empty()) return {0, {}, "messages must be a non-empty array"};
  bool tool_blocks = false;
  std::string_view prev;
  for (const auto& m : msgs->value.GetArray()) {
    const std::string_view role = str_member(m, "role");
    if (role != "user" && role != "assistant") return {0, {}, "role must be user or assistant"};
    if (role == prev) return {0, {}, "A conversation must alternate between user and assistant roles."};
    if (prev.empty() && role != "user") return {0, {}, "A conversation must start with a user message."};
    prev = role;
    if (!m.HasMember("content")) return {0, {}, "each message needs content"};
    if (auto err = check_blocks(m["content"], tool_blocks, a.input_tokens); !err.empty()) return {0, {}, err};
  }
  if (auto sys = doc.FindMember("system"); sys != doc.MemberEnd() && sys->value.IsArray())
    for (const auto& b : sys->value.GetArray()) a.input_tokens += count_words(str_member(b, "text"));
  a.input_tokens = std::max(a.input_tokens, 1);
  const rapidjson::Value* tools = nullptr;
  if (auto tc = doc.FindMember("toolConfig"); tc != doc.MemberEnd() && tc->value.HasMember("tools"))
    tools = &tc->value["tools"];
  if (tool_blocks && !tools)
    return {0, {}, "The toolConfig field must be defined when using toolUse and toolResult content blocks."};
  const auto& last = msgs->value[msgs->value.Size() - 1];
  const bool answered = last["content"].IsArray() && !last["content"].Empty() && last["content"][0].HasMember("toolResult");
  if (tools && tools->IsArray() && !tools->Empty() && !answered) {
    const auto& config = doc["toolConfig"];
    const rapidjson::Value* choice = config.HasMember("toolChoice") ? &config["toolChoice"] : nullptr;
    if (choice && choice->IsObject() && choice->HasMember("tool")) a.tool = str_member((*choice)["tool"], "name");
    else if ((*tools)[0].HasMember("toolSpec")) a.tool = str_member((*tools)[0]["toolSpec"], "name");
  }
  return a;
}

std::string usage_json(const Ask& a, int output) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "usage");
    w.StartObject();
    key(w, "inputTokens");
    w.Int(a.input_tokens);
    key(w, "outputTokens");
    w.Int(output);
    key(w, "totalTokens");
    w.Int(a.input_tokens + output);
    w.EndObject();
    key(w, "metrics");
    w.StartObject();
    key(w, "latencyMs");
    w.Int(1);
    w.EndObject();
    w.EndObject();
  });
}

std::string tool_input(const std::string& name) { return "{\"mock\":\"" + name + "\"}"; }

std::string whole_body(const Ask& a, const std::vector<std::string>& words, const ReplyContext& ctx) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "output");
    w.StartObject();
    key(w, "message");
    w.StartObject();
    key(w, "role");
    put(w, "assistant");
    key(w, "content");
    w.StartArray();
    w.StartObject();
    if (a.tool.empty()) {
      key(w, "text");
      put(w, join(words));
    } else {
      key(w, "toolUse");
      w.StartObject();
      key(w, "toolUseId");
      put(w, "tooluse_" + ctx.name + "_" + std::to_string(ctx.seq));
      key(w, "name");
      put(w, a.tool);
      key(w, "input");
      w.StartObject();
      key(w, "mock");
      put(w, ctx.name);
      w.EndObject();
      w.EndObject();
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    w.EndObject();
    key(w, "stopReason");
    put(w, a.tool.empty() ? "end_turn" : "tool_use");
    key(w, "usage");
    w.StartObject();
    key(w, "inputTokens");
    w.Int(a.input_tokens);
    key(w, "outputTokens");
    w.Int(static_cast<int>(words.size()));
    key(w, "totalTokens");
    w.Int(a.input_tokens + static_cast<int>(words.size()));
    w.EndObject();
    w.EndObject();
  });
}

// A contentBlockDelta payload (block 0); `fill` writes the delta's members.
std::string block_delta(const std::function<void(Writer&)>& fill, bool padded) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "contentBlockIndex");
    w.Int(0);
    key(w, "delta");
    w.StartObject();
    fill(w);
    w.EndObject();
    if (padded) {
      key(w, "p");  // Bedrock pads events with a "p" member
      put(w, "abcdefgh");
    }
    w.EndObject();
  });
}

std::string text_delta(const std::string& text) {
  return block_delta([&](Writer& w) {
    key(w, "text");
    put(w, text);
  }, true);
}

std::string tool_delta(const std::string& fragment) {
  return block_delta([&](Writer& w) {
    key(w, "toolUse");
    w.StartObject();
    key(w, "input");
    put(w, fragment);
    w.EndObject();
  }, false);
}

void stream_steps(Reply& rep, const Ask& a, const std::vector<std::string>& words, const ReplyContext& ctx) {
  rep.first.push_back(event("messageStart", R"({"role":"assistant"})"));
  if (a.tool.empty()) {
    for (std::size_t i = 0; i < words.size(); ++i) rep.steps.push_back({event("contentBlockDelta", text_delta(piece(words, i)))});
  } else {
    const std::string id = "tooluse_" + ctx.name + "_" + std::to_string(ctx.seq);
    rep.steps.push_back({event("contentBlockStart", R"({"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":")" + id +
                                                        R"(","name":")" + a.tool + R"("}}})")});
    const std::string input = tool_input(ctx.name);
    const std::size_t half = input.size() / 2;
    rep.steps.push_back({event("contentBlockDelta", tool_delta(input.substr(0, half)))});
    rep.steps.push_back({event("contentBlockDelta", tool_delta(input.substr(half)))});
  }
  rep.tail.push_back(event("contentBlockStop", R"({"contentBlockIndex":0})"));
  rep.tail.push_back(event("messageStop", a.tool.empty() ? R"({"stopReason":"end_turn"})" : R"({"stopReason":"tool_use"})"));
  rep.end_event = event("metadata", usage_json(a, static_cast<int>(words.size())));
  rep.tail.push_back(rep.end_event);
}

}  // namespace

bool match(std::string_view path, std::string& model_id, bool& stream) {
  constexpr std::string_view kModel = "/model/";
  if (path.substr(0, kModel.size()) != kModel) return false;
  std::string_view rest = path.substr(kModel.size());
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  const std::string_view op = rest.substr(slash + 1);
  if (op != "converse" && op != "converse-stream") return false;
  stream = op == "converse-stream";
  model_id.clear();
  const std::string_view enc = rest.substr(0, slash);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] == '%' && i + 2 < enc.size()) {
      model_id += static_cast<char>(std::stoi(std::string(enc.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      model_id += enc[i];
    }
  }
  return true;
}

std::string check_auth(const Settings& s, std::string_view method, std::string_view target, const Headers& headers,
                       std::string_view body, std::chrono::system_clock::time_point now) {
  const std::string auth = header_value(headers, "authorization");
  if (!s.api_key.empty() && auth == "Bearer " + s.api_key) return {};  // a Bedrock API key
  if (s.aws_secret_access_key.empty()) return s.api_key.empty() ? std::string() : "invalid API key";
  return verify_sigv4(s, method, target, headers, body, now);
}

Reply converse_reply(std::string_view body, std::string_view model_id, bool stream, const ReplyContext& ctx) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return refuse("Malformed input request, please reformat your input and try again.");
  if (doc.HasMember("model")) return refuse("extraneous key [model] is not permitted");
  const Ask a = read_ask(doc);
  if (!a.error.empty()) return refuse(a.error);
  const auto words = a.tool.empty() ? words_of(ctx.name, std::max(ctx.settings.chunks, 0)) : std::vector<std::string>{};
  Reply rep;
  rep.model = std::string(model_id);
  rep.stream = stream;
  rep.error_body = &bedrock::error_body;
  rep.stream_content_type = "application/vnd.amazon.eventstream";
  rep.error_event = frame({{":exception-type", "throttlingException"}, {":content-type", "application/json"},
                           {":message-type", "exception"}},
                          R"({"message":"Too many tokens, please wait before trying again."})");
  if (!stream) rep.body = whole_body(a, words, ctx);
  else stream_steps(rep, a, words, ctx);
  return rep;
}

std::string error_body(int, std::string_view message) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "message");
    put(w, message);
    w.EndObject();
  });
}

std::string frame(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload) {
  std::string h;
  for (const auto& [name, value] : headers) {
    h += static_cast<char>(name.size());
    h += name;
    h += '\x07';
    h += static_cast<char>(value.size() >> 8);
    h += static_cast<char>(value.size() & 0xff);
    h += value;
  }
  std::string out;
  be32(out, static_cast<std::uint32_t>(16 + h.size() + payload.size()));
  be32(out, static_cast<std::uint32_t>(h.size()));
  be32(out, crc(out));
  out += h;
  out += payload;
  be32(out, crc(out));
  return out;
}

}  // namespace tailgate::mock::bedrock

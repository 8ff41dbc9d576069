// Parsing a client's OpenAI-shaped request body into the internal request.
//
// The body is forwarded byte for byte except two changes: `model` becomes the
// deployment's upstream model, and the gateway-only fields (fastest_response,
// fallbacks, num_retries, timeout, metadata, ...) are dropped. So we do not
// build a DOM and re-serialize: one SAX pass validates the JSON and records
// where each top-level member lies (ParsedBody::members / spans); a codec
// splices the upstream body from those spans.
#include "surfaces/openai/parse.hpp"
#include "config/config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace tailgate::surfaces::openai {

namespace {

constexpr std::array<std::string_view, 11> kGatewayFields = {
    "fastest_response", "fallbacks",  "context_window_fallbacks", "num_retries", "timeout", "stream_timeout",
    "metadata",         "hedge",      "strategies",               "race",        "mock_response"};

// Deeper bodies are refused: the parse here is iterative, but later recursive
// readers (fallbacks, metadata, overrides, the upstream's own parser) are not,
// and a pool thread has a small stack.
constexpr int kMaxDepth = 128;
// Where to send a request, and with which credentials, is the config's business:
// an upstream that honours these (another LiteLLM proxy does) could be steered
// by the client to any host. Whole families go by prefix (LiteLLM keeps adding
// provider fields: aws_bedrock_runtime_endpoint, vertex_ai_project, ...);
// `user_config` and `model_list` carry a whole per-request router of their own.
constexpr std::array<std::string_view, 8> kCredentialPrefixes = {
    "api_", "aws_", "azure_", "vertex_", "bedrock_", "sagemaker_", "watsonx_", "litellm_"};
constexpr std::array<std::string_view, 9> kCredentialFields = {
    "base_url",      "custom_llm_provider", "organization", "extra_headers", "headers",
    "deployment_id", "user_config",         "model_list",   "region_name"};

enum class Kind { None, Null, Bool, Number, String, Object, Array };

struct Member {
    std::string key;
    size_t begin = 0;        // just after the previous member (includes its ',')
    size_t value_begin = 0;  // first byte of the value
    size_t end = 0;          // just after the value
    Kind kind = Kind::None;
    bool b = false;
    double num = 0;
    bool is_int = false;
    std::string str;
};

// SAX handler recording the top-level members and their spans.
class Scanner : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Scanner> {
public:
    Scanner(rapidjson::MemoryStream& s, std::string_view body) : s_(s), body_(body) {}

    bool Null() { return scalar(Kind::Null); }
    bool Bool(bool b) {
        if (depth_ == 1) cur_.b = b;
        return scalar(Kind::Bool);
    }
    bool Int(int i) { return number(i, true); }
    bool Uint(unsigned u) { return number(u, true); }
    bool Int64(int64_t i) { return number(static_cast<double>(i), true); }
    bool Uint64(uint64_t u) { return number(static_cast<double>(u), true); }
    bool Double(double d) { return number(d, false); }
    bool String(const char* str, rapidjson::SizeType len, bool) {
        if (depth_ == 1) cur_.str.assign(str, len);
        return scalar(Kind::String);
    }
    bool StartObject() { return open(Kind::Object); }
    bool EndObject(rapidjson::SizeType) { return close(); }
    bool StartArray() { return open(Kind::Array); }
    bool EndArray(rapidjson::SizeType) { return close(); }
    bool Key(const char* str, rapidjson::SizeType len, bool) {
        if (depth_ == 2 && credential.empty() && cur_.key == "extra_body" &&
            is_client_credential_field(std::string_view(str, len)))
            credential.assign(str, len);
        if (depth_ == 1) {
            cur_ = Member{};
            cur_.key.assign(str, len);
            cur_.begin = prev_end_;
            // The value starts after the ':' and any whitespace.
            size_t p = s_.Tell();
            while (p < body_.size() && (body_[p] == ' ' || body_[p] == '\t' || body_[p] == '\n' ||
                                        body_[p] == '\r' || body_[p] == ':'))
                ++p;
            cur_.value_begin = p;
        }
        return true;
    }

    bool root_is_object = false;
    bool too_deep = false;
    std::vector<Member> members;
    std::string credential;  // first credential field seen inside extra_body

private:
    bool number(double d, bool is_int) {
        if (depth_ == 1) {
            cur_.num = d;
            cur_.is_int = is_int;
        }
        return scalar(Kind::Number);
    }
    bool scalar(Kind k) {
        if (depth_ == 1) {
            cur_.kind = k;
            finish_member();
        }
        return true;
    }
    bool open(Kind k) {
        if (depth_ == 0) {
            root_is_object = k == Kind::Object;
            prev_end_ = past_bracket(s_.Tell(), '{');
        } else if (depth_ == 1) {
            cur_.kind = k;
        }
        if (++depth_ > kMaxDepth) {
            too_deep = true;
            return false;
        }
        return true;
    }
    bool close() {
        --depth_;
        if (depth_ == 1) finish_member(past_bracket(s_.Tell(), '}', ']'));
        return true;
    }
    // The iterative parser reports brackets before consuming them.
    size_t past_bracket(size_t pos, char a, char b = '\0') const {
        return pos < body_.size() && (body_[pos] == a || (b && body_[pos] == b)) ? pos + 1 : pos;
    }
    void finish_member() { finish_member(s_.Tell()); }
    void finish_member(size_t end) {
        cur_.end = end;
        prev_end_ = cur_.end;
        members.push_back(std::move(cur_));
        cur_ = Member{};
    }

    rapidjson::MemoryStream& s_;
    std::string_view body_;
    int depth_ = 0;
    size_t prev_end_ = 0;
    Member cur_;
};

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::Null: return "null";
        case Kind::Bool: return "a boolean";
        case Kind::Number: return "a number";
        case Kind::String: return "a string";
        case Kind::Object: return "an object";
        case Kind::Array: return "an array";
        default: return "nothing";
    }
}

ApiError type_error(const Member& m, const char* expected) {
    return ApiError::bad_request("'" + m.key + "' must be " + expected + ", got " + kind_name(m.kind), m.key,
                                 "invalid_type");
}

std::string_view trim_member(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == ',')) ++i;
    return s.substr(i);
}

// A JSON list of model-group names; LiteLLM also allows {"model": "..."} items.
std::optional<std::vector<std::string>> string_list(std::string_view json, bool allow_model_objects) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsArray()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& v : d.GetArray()) {
        if (v.IsString()) {
            out.emplace_back(v.GetString(), v.GetStringLength());
        } else if (allow_model_objects && v.IsObject() && v.HasMember("model") && v["model"].IsString()) {
            out.emplace_back(v["model"].GetString(), v["model"].GetStringLength());
        } else {
            return std::nullopt;
        }
    }
    return out;
}

// A request's `strategies`: a list of names, read by a SAX handler that stops
// at the first entry over the limits, so a huge list is never built.
class StrategyList : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, StrategyList> {
public:
    enum class Error { None, NotNames, TooMany, TooLong };

    bool Default() { return fail(Error::NotNames); }  // any value but the list and its strings
    bool StartArray() {
        if (depth_ != 0) return fail(Error::NotNames);  // only the list itself
        depth_ = 1;
        return true;
    }
    bool EndArray(rapidjson::SizeType) { return true; }
    bool String(const char* s, rapidjson::SizeType len, bool) {
        if (depth_ != 1) return fail(Error::NotNames);
        if (names.size() == config::kMaxRequestStrategies) return fail(Error::TooMany);
        if (len > config::kMaxStrategyNameBytes) return fail(Error::TooLong);
        names.emplace_back(s, len);
        return true;
    }

    std::vector<std::string> names;
    Error error = Error::None;

private:
    bool fail(Error e) {
        error = e;
        return false;
    }
    int depth_ = 0;
};

std::variant<std::vector<std::string>, ApiError> strategy_list(std::string_view json) {
    StrategyList list;
    rapidjson::MemoryStream ms(json.data(), json.size());
    rapidjson::Reader reader;
    reader.Parse<rapidjson::kParseIterativeFlag>(ms, list);
    switch (list.error) {
        case StrategyList::Error::TooMany:
            return ApiError::bad_request("'strategies' may name at most " +
                                             std::to_string(config::kMaxRequestStrategies) + " strategies",
                                         "strategies", "too_many_strategies");
        case StrategyList::Error::TooLong:
            return ApiError::bad_request("'strategies' entries must be at most " +
                                             std::to_string(config::kMaxStrategyNameBytes) + " bytes long",
                                         "strategies", "invalid_value");
        case StrategyList::Error::NotNames: break;
        case StrategyList::Error::None:
            if (!list.names.empty()) return std::move(list.names);
            break;
    }
    return ApiError::bad_request("'strategies' must be a non-empty list of strategy names", "strategies",
                                 "invalid_type");
}

}  // namespace

bool is_client_credential_field(std::string_view key) {
    for (auto p : kCredentialPrefixes)
        if (key.substr(0, p.size()) == p) return true;
    for (auto f : kCredentialFields)
        if (f == key) return true;
    return false;
}

bool is_gateway_field(std::string_view key) {
    for (auto f : kGatewayFields)
        if (f == key) return true;
    return false;
}

std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint op, std::string_view path_model) {
    const BodyRules rules{op == Endpoint::Chat          ? "messages"
                          : op == Endpoint::Completions ? "prompt"
                                                        : "input",
                          op == Endpoint::Chat, false, path_model};
    auto out = parse_members(body, rules);
    if (auto* p = std::get_if<ParsedBody>(&out); p && op == Endpoint::Embeddings && p->stream)
        return ApiError::bad_request("'stream' is not supported for embeddings", "stream");
    return out;
}

std::variant<ParsedBody, ApiError> parse_members(std::string_view body, const BodyRules& rules) {
    if (body.empty()) return ApiError::bad_request("Request body is empty; expected a JSON object");
    rapidjson::MemoryStream ms(body.data(), body.size());
    Scanner scanner(ms, body);
    rapidjson::Reader reader;
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    rapidjson::ParseResult ok = reader.Parse<kFlags>(ms, scanner);
    if (scanner.too_deep)
        return ApiError::bad_request("Request body is nested more than " + std::to_string(kMaxDepth) + " levels deep",
                                     "", "json_too_deep");
    if (!ok) {
        if (ok.Code() == rapidjson::kParseErrorStringInvalidEncoding)
            return ApiError::bad_request("Request body is not valid UTF-8 (at byte offset " +
                                             std::to_string(ok.Offset()) + ")",
                                         "", "invalid_utf8");
        return ApiError::bad_request(std::string("Invalid JSON in request body at offset ") +
                                     std::to_string(ok.Offset()) + ": " + rapidjson::GetParseError_En(ok.Code()));
    }
    if (!scanner.root_is_object) return ApiError::bad_request("Request body must be a JSON object");

    ParsedBody out;
    std::string overrides = "{";
    bool have_model = false, have_required = false;
    const std::string required(rules.required);
    for (const Member& m : scanner.members) {
        if (out.client_credential.empty() && is_client_credential_field(m.key)) out.client_credential = m.key;
        std::string_view value = body.substr(m.value_begin, m.end - m.value_begin);
        if (m.key == "model") {
            if (!rules.path_model.empty()) continue;  // Azure: the deployment in the path decides
            if (m.kind != Kind::String) return type_error(m, "a string");
            if (m.str.empty()) return ApiError::bad_request("'model' must not be empty", "model");
            out.model = m.str;
            have_model = true;
            continue;
        }
        if (m.key == "metadata") {
            if (m.kind != Kind::Object && m.kind != Kind::Null) return type_error(m, "an object");
            if (m.kind == Kind::Object) out.metadata_json.assign(value);
        }
        // Anthropic's metadata is an API field: forwarded, below.
        if (is_gateway_field(m.key) && !(m.key == "metadata" && rules.forward_metadata)) {
            if (m.key == "fastest_response") {
                if (m.kind != Kind::Bool) return type_error(m, "a boolean");
                out.fastest_response = m.b;
            } else if (m.key == "num_retries") {
                if (m.kind != Kind::Number || !m.is_int || m.num < 0 || m.num > 10)
                    return ApiError::bad_request("'num_retries' must be an integer between 0 and 10", "num_retries",
                                                 "invalid_value");
                out.num_retries = static_cast<int>(m.num);
            } else if (m.key == "timeout" || m.key == "stream_timeout") {
                if (m.kind != Kind::Number || !(m.num > 0) || !std::isfinite(m.num))
                    return ApiError::bad_request("'" + m.key + "' must be a positive number of seconds", m.key,
                                                 "invalid_value");
                (m.key == "timeout" ? out.timeout_s : out.stream_timeout_s) = m.num;
            } else if (m.key == "fallbacks") {
                out.fallbacks = string_list(value, true);
                if (!out.fallbacks)
                    return ApiError::bad_request("'fallbacks' must be a list of model group names", "fallbacks",
                                                 "invalid_type");
            } else if (m.key == "strategies") {
                auto list = strategy_list(value);
                if (auto* e = std::get_if<ApiError>(&list)) return *e;
                out.strategies = std::move(std::get<std::vector<std::string>>(list));
            }
            if (overrides.size() > 1) overrides += ',';
            overrides += json_quote(m.key);
            overrides += ':';
            overrides.append(value);
            continue;
        }
        if (m.key == "stream") {
            if (m.kind == Kind::Bool) out.stream = m.b;
            else if (m.kind != Kind::Null) return type_error(m, "a boolean");
        } else if (m.key == required) {
            have_required = true;
            if (rules.required_array && m.kind != Kind::Array) return type_error(m, "an array");
        }
        std::string_view text = trim_member(body.substr(m.begin, m.end - m.begin));
        if (!out.members.empty()) out.members += ',';
        out.spans.push_back(ParsedBody::Span{m.key, out.members.size(), out.members.size() + text.size()});
        out.members.append(text);
    }
    if (!rules.path_model.empty()) {
        out.model = rules.path_model;
        have_model = true;
    }
    if (!have_model && !rules.default_model.empty()) {
        out.model = rules.default_model;
        out.model_defaulted = true;
        have_model = true;
    }
    if (!have_model) return ApiError::bad_request("Missing required parameter: 'model'", "model", "missing_required_parameter");
    if (!have_required && !required.empty())
        return ApiError::bad_request("Missing required parameter: '" + required + "'", required,
                                     "missing_required_parameter");
    if (out.client_credential.empty() && !scanner.credential.empty())
        out.client_credential = "extra_body." + scanner.credential;
    overrides += '}';
    out.overrides_json = std::move(overrides);
    return out;
}

}  // namespace tailgate::surfaces::openai

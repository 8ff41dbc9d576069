// Fuzz target: the request body check/rewrite (server/request_body.cpp).
// Byte 0 picks the endpoint; the rest is the body. An accepted body must
// rewrite into a valid JSON object whose `model` is the deployment's and that
// carries no gateway-only field; the gateway-only fields must be valid JSON too.
#include "server/request_body.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "request_body invariant violated: %s\n", what);
        std::abort();
    }
}

bool parses_as_object(std::string_view json, rapidjson::Document& d) {
    d.Parse(json.data(), json.size());
    return !d.HasParseError() && d.IsObject();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const auto endpoint = static_cast<tailgate::Endpoint>(data[0] % 3);
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto result = tailgate::server::parse_body(body, endpoint);
    if (auto* err = std::get_if<tailgate::ApiError>(&result)) {
        check(err->status == 400 && !err->message.empty(), "a rejection is a 400 with a message");
        rapidjson::Document d;
        check(parses_as_object(err->body(), d), "the error body is a JSON object");
        return 0;
    }
    const auto& parsed = std::get<tailgate::server::ParsedBody>(result);
    check(!parsed.model.empty(), "an accepted body names a model");

    const std::string rewritten = parsed.body_for("fuzz/\"upstream\"\n-model");
    rapidjson::Document d;
    check(parses_as_object(rewritten, d), "the rewritten body is a JSON object");
    auto model = d.FindMember("model");
    check(model != d.MemberEnd() && model->value.IsString() &&
              std::string_view(model->value.GetString(), model->value.GetStringLength()) ==
                  "fuzz/\"upstream\"\n-model",
          "the rewritten body's model is the deployment's");
    size_t models = 0;
    for (const auto& m : d.GetObject()) {
        std::string_view key(m.name.GetString(), m.name.GetStringLength());
        check(!tailgate::server::is_gateway_field(key), "no gateway-only field is forwarded");
        if (key == "model") ++models;
    }
    check(models == 1, "exactly one model member is forwarded");

    rapidjson::Document o, md;
    check(parses_as_object(parsed.overrides_json, o), "overrides_json is a JSON object");
    check(parses_as_object(parsed.metadata_json, md), "metadata_json is a JSON object");
    return 0;
}

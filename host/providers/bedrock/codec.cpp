#include "providers/bedrock/codec.hpp"

#include "providers/crypto.hpp"
#include "providers/openai/codec.hpp"

#include <algorithm>
#include <chrono>

namespace tailgate::providers::bedrock {

namespace {

constexpr std::string_view kService = "bedrock";

std::optional<std::string> first_of(const DeploymentParams& p, std::initializer_list<const char*> params,
                                    std::initializer_list<const char*> env) {
    for (const char* k : params)
        if (auto v = p.param(k); v && !v->empty()) return v;
    for (const char* k : env)
        if (auto v = p.env(k); v && !v->empty()) return v;
    return std::nullopt;
}

std::optional<std::string> region_of(const DeploymentParams& p) {
    return first_of(p, {"aws_region_name"}, {"AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"});
}

// The Host header as the upstream client would write it: it is signed.
std::string host_header(const Target& t) {
    const bool v6 = t.host.find(':') != std::string_view::npos;
    std::string h = v6 ? "[" + std::string(t.host) + "]" : std::string(t.host);
    const bool default_port = t.port.empty() || (t.tls ? t.port == "443" : t.port == "80");
    if (!default_port) h += ":" + std::string(t.port);
    return h;
}

void sign(const AwsCredentials& aws, upstream::Request& out) {
    const std::string date = amz_date(std::chrono::system_clock::now());
    const std::string payload = hex(bytes_of(sha256(out.body)));
    out.headers.emplace_back("X-Amz-Date", date);
    if (!aws.keys().session_token.empty()) out.headers.emplace_back("X-Amz-Security-Token", aws.keys().session_token);
    SigV4Request r{"POST", canonical_uri(out.target), "", out.headers, payload, date, aws.region(), std::string(kService)};
    out.headers.emplace_back("Authorization", authorization(aws.keys(), r));
}

}  // namespace

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

std::string_view model_id(std::string_view m) {
    for (std::string_view hint : {"converse/", "invoke/"})
        if (m.substr(0, hint.size()) == hint) return m.substr(hint.size());
    return m;
}

std::string Codec::default_base(const DeploymentParams& p) const {
    if (auto endpoint = p.param("aws_bedrock_runtime_endpoint")) return *endpoint;
    const auto region = region_of(p);
    return region ? "https://bedrock-runtime." + *region + ".amazonaws.com" : std::string();
}

CredentialsPtr Codec::credentials(const DeploymentParams& p, std::string& error) const {
    const auto region = region_of(p);
    if (!region) {
        error = "bedrock/ needs a region: aws_region_name, or AWS_REGION_NAME / AWS_REGION / AWS_DEFAULT_REGION";
        return nullptr;
    }
    AwsKeys keys;
    auto id = p.param("aws_access_key_id"), secret = p.param("aws_secret_access_key");
    auto token = p.param("aws_session_token");
    if (!id && !secret) {  // none in the config: the standard environment variables
        id = p.env("AWS_ACCESS_KEY_ID");
        secret = p.env("AWS_SECRET_ACCESS_KEY");
        token = p.env("AWS_SESSION_TOKEN");
    }
    const bool have_keys = id && !id->empty() && secret && !secret->empty();
    if (!have_keys && p.api_key.empty()) {
        error = "bedrock/ needs AWS credentials: aws_access_key_id and aws_secret_access_key (or "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a Bedrock API key as api_key "
                "(AWS_BEARER_TOKEN_BEDROCK)";
        return nullptr;
    }
    if (have_keys) keys = AwsKeys{*id, *secret, token.value_or("")};
    return std::make_shared<AwsCredentials>(std::move(keys), *region);
}

void Codec::build(const CallSpec& call, upstream::Request& out) const {
    const Target& t = call.target;
    out.origin = upstream::Origin{std::string(t.host), std::string(t.port), t.tls, t.ssl_verify};
    out.body = to_converse(call.request, call.op, call.dropped);
    out.target = t.base_path;
    out.target += "/model/";
    out.target += uri_encode(model_id(call.model), true);
    out.target += call.stream ? "/converse-stream" : "/converse";
    out.headers.emplace_back("Host", host_header(t));
    out.headers.emplace_back("Content-Type", "application/json");
    const auto* aws = dynamic_cast<const AwsCredentials*>(t.credentials);
    if (aws && aws->signs()) {
        sign(*aws, out);  // signs the headers so far (host, content-type)
    } else if (!t.api_key.empty()) {
        out.headers.emplace_back("Authorization", "Bearer " + std::string(t.api_key));
    }
    out.headers.emplace_back("Accept", call.stream ? "application/vnd.amazon.eventstream" : "application/json");
}

ErrorClass exception_class(std::string_view type) {
    std::string t(type);
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (t.find("throttling") != std::string::npos || t.find("toomanyrequests") != std::string::npos)
        return ErrorClass::RateLimit;
    if (t.find("accessdenied") != std::string::npos || t.find("unrecognizedclient") != std::string::npos ||
        t.find("signature") != std::string::npos || t.find("expiredtoken") != std::string::npos)
        return ErrorClass::Auth;
    if (t.find("resourcenotfound") != std::string::npos) return ErrorClass::NotFound;
    if (t.find("timeout") != std::string::npos) return ErrorClass::Timeout;
    if (t.find("validation") != std::string::npos) return ErrorClass::BadRequest;
    return ErrorClass::Server;  // internalServer, serviceUnavailable, modelStreamError, modelNotReady, ...
}

UpstreamError Codec::decode_error(const upstream::ResponseHead& head, std::string_view body) const {
    UpstreamError e;
    e.http_status = head.status;
    e.error_class = openai::classify_status(head.status, body);
    // Bedrock says "Input is too long" / "too many input tokens" for an overlong prompt.
    if (e.error_class == ErrorClass::BadRequest &&
        (body.find("too long") != std::string_view::npos || body.find("too many input tokens") != std::string_view::npos))
        e.error_class = ErrorClass::ContextWindow;
    e.message = openai::upstream_message(body);  // {"message": ...} (Bedrock) or {"error": {...}}
    if (std::string_view type = head.header("x-amzn-errortype"); !type.empty())
        e.message = std::string(type.substr(0, type.find(':'))) + ": " + e.message;
    e.retry_after_ms = retry_after_ms(head);
    return e;
}

}  // namespace tailgate::providers::bedrock

#include "providers/vertex/codec.hpp"

#include "providers/vertex/token_source.hpp"

#include <fstream>
#include <sstream>

namespace tailgate::providers::vertex {

namespace {

// vertex_credentials is the key's JSON itself or the path of its file.
std::optional<std::string> credentials_json(const DeploymentParams& p, std::string& error) {
    std::optional<std::string> v = p.param("vertex_credentials");
    if (!v) v = p.env("GOOGLE_APPLICATION_CREDENTIALS");
    if (!v || v->empty()) {
        error = "vertex_ai/ needs a service account: vertex_credentials (a key file's path or its JSON), or "
                "GOOGLE_APPLICATION_CREDENTIALS";
        return std::nullopt;
    }
    if (v->find('{') != std::string::npos) return v;
    std::ifstream in(*v);
    if (!in) {
        error = "vertex_credentials: cannot read the key file '" + *v + "'";
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string location_of(const DeploymentParams& p) {
    auto v = p.param("vertex_location");
    if (!v) v = p.env("VERTEXAI_LOCATION");
    return v && !v->empty() ? *v : "us-central1";
}

std::optional<std::string> project_of(const DeploymentParams& p) {
    auto v = p.param("vertex_project");
    if (!v) v = p.env("VERTEXAI_PROJECT");
    if (v && !v->empty()) return v;
    std::string ignored;
    if (auto json = credentials_json(p, ignored))
        if (auto sa = parse_service_account(*json, ignored); sa && !sa->project_id.empty()) return sa->project_id;
    return std::nullopt;
}

}  // namespace

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

std::string Codec::default_base(const DeploymentParams& p) const {
    const auto project = project_of(p);
    if (!project) return {};
    const std::string location = location_of(p);
    const std::string host = location == "global" ? "aiplatform.googleapis.com" : location + "-aiplatform.googleapis.com";
    return "https://" + host + "/v1/projects/" + *project + "/locations/" + location + "/endpoints/openapi";
}

CredentialsPtr Codec::credentials(const DeploymentParams& p, std::string& error) const {
    // Read even when api_base names the endpoint, so they are not reported as unknown keys.
    (void)p.param("vertex_project"), (void)p.param("vertex_location");
    const auto json = credentials_json(p, error);
    if (!json) return nullptr;
    auto sa = parse_service_account(*json, error);
    if (!sa) return nullptr;
    return TokenSource::for_account(std::move(*sa), std::string(kCloudPlatformScope));
}

void Codec::build(const CallSpec& call, upstream::Request& out) const {
    if (call.model.find('/') != std::string_view::npos) return openai::Codec::build(call, out);
    // Google's own models are "google/<name>" on this endpoint.
    const std::string model = "google/" + std::string(call.model);
    openai::Codec::build(CallSpec{call.target, call.op, call.stream, model, call.request, call.dropped}, out);
}

void Codec::address(const CallSpec& call, upstream::Request& out) const {
    const auto* source = dynamic_cast<const TokenSource*>(call.target.credentials);
    if (!source) return;
    out.headers.emplace_back("Authorization", "Bearer " + source->token());
}

}  // namespace tailgate::providers::vertex

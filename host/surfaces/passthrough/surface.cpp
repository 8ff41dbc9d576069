#include "surfaces/passthrough/surface.hpp"

#include "surfaces/openai/parse.hpp"

#include <array>

namespace tailgate::surfaces::passthrough {

namespace {

constexpr size_t kMaxModelBytes = 256;

ApiError form_error(std::string message, std::string param = "") {
    return ApiError::bad_request(std::move(message), std::move(param), "invalid_multipart");
}

}  // namespace

std::variant<providers::ParsedBody, ApiError> parse_form(std::string_view body, std::string_view content_type,
                                                         const providers::Operation& op, std::string_view path_model) {
    if (body.empty()) return form_error("Request body is empty; expected a multipart/form-data form");
    auto parsed = providers::multipart::Form::parse(content_type, std::string(body));
    if (auto* e = std::get_if<providers::multipart::Error>(&parsed)) return form_error(e->message);
    auto form = std::make_shared<const providers::multipart::Form>(
        std::move(std::get<providers::multipart::Form>(parsed)));
    providers::ParsedBody out;
    for (const auto& p : form->parts()) {
        if (out.client_credential.empty() && openai::is_client_credential_field(p.name))
            out.client_credential = p.name;
        if (p.name == "model" && p.filename) return form_error("'model' must be a form field, not a file", "model");
    }
    if (!path_model.empty()) {
        out.model = path_model;
    } else if (const auto* m = form->find("model")) {
        const std::string_view v = form->value(*m);
        if (v.empty()) return ApiError::bad_request("'model' must not be empty", "model");
        if (v.size() > kMaxModelBytes)
            return ApiError::bad_request("'model' is longer than " + std::to_string(kMaxModelBytes) + " bytes", "model");
        for (unsigned char c : v)
            if (c < 0x20 || c == 0x7f) return ApiError::bad_request("'model' has control characters", "model");
        out.model = v;
    } else if (!op.default_model.empty()) {
        out.model = op.default_model;
        out.model_defaulted = true;
    } else {
        return ApiError::bad_request("Missing required parameter: 'model'", "model", "missing_required_parameter");
    }
    if (!op.required.empty()) {
        // One file is sent as `image`, several as `image[]` (the openai clients' array form).
        const auto* r = form->find(op.required);
        if (!r) r = form->find(std::string(op.required) + "[]");
        if (!r) {
            return ApiError::bad_request("Missing required parameter: '" + std::string(op.required) + "'",
                                         std::string(op.required), "missing_required_parameter");
        }
    }
    if (const auto* s = form->find("stream")) {
        const std::string_view v = form->value(*s);
        if (v == "true") out.stream = true;
        else if (v != "false") return ApiError::bad_request("'stream' must be true or false", "stream");
    }
    out.form = std::move(form);
    return out;
}

std::variant<providers::ParsedBody, ApiError> Surface::parse_client_request(std::string_view body,
                                                                     std::string_view content_type,
                                                                     std::string_view path_model) const {
    if (op_.request == providers::RequestForm::Multipart) return parse_form(body, content_type, op_, path_model);
    openai::BodyRules rules;
    rules.required = op_.required;
    rules.path_model = path_model;
    rules.default_model = op_.default_model;
    auto out = openai::parse_members(body, rules);
    // Audio is a stream whatever the client says: relayed as it is generated.
    if (auto* p = std::get_if<providers::ParsedBody>(&out); p && op_.response == providers::ResponseForm::BinaryStream)
        p->stream = true;
    return out;
}

const surfaces::Surface* surface_for(Endpoint op) {
    static const auto surfaces = [] {
        std::array<std::unique_ptr<Surface>, kEndpointCount> all;
        for (const auto& o : providers::operations())
            if (o.pass_through()) all[static_cast<size_t>(o.op)] = std::make_unique<Surface>(o);
        return all;
    }();
    const auto i = static_cast<size_t>(op);
    return i < surfaces.size() ? surfaces[i].get() : nullptr;
}

}  // namespace tailgate::surfaces::passthrough

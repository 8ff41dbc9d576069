#include "dispatch/sse.hpp"

#include "providers/openai/codec.hpp"

namespace tailgate::dispatch {

SseScanner::SseScanner() : decoder_(providers::openai::codec().decoder(nullptr)) {}

SseScanner::Result SseScanner::feed(std::string_view bytes) {
    const providers::Decoded d = decoder_->feed(bytes);
    if (d.malformed) malformed_ = true;
    return Result{d.content, d.done, d.error != nullptr, d.malformed, d.client};
}

const std::string& SseScanner::error_event() const {
    static const std::string none;
    const providers::UpstreamError* e = decoder_->stream_error();
    return e ? e->message : none;
}

bool SseScanner::has_content(std::string_view json) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    return !d.HasParseError() && providers::openai::has_content(d);
}

void read_usage(std::string_view json, int64_t& prompt, int64_t& completion) {
    if (json.find("\"usage\"") == std::string_view::npos) return;
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (!d.HasParseError()) read_usage(d, prompt, completion);
}

void read_usage(const rapidjson::Value& d, int64_t& prompt, int64_t& completion) {
    providers::Usage u{prompt, completion};
    providers::openai::read_usage(d, u);
    prompt = u.prompt_tokens;
    completion = u.completion_tokens;
}

}  // namespace tailgate::dispatch

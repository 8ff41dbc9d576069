// Fuzz target: upstream bytes on both Responses paths. The same bytes, cut at
// byte 0's offset, go (1) to the native Responses decoder and the tap that
// watches the client's copy, and (2) to the chat decoder with the Responses
// renderer (the translated path). What the renderer writes must be typed
// events whose data is JSON with consecutive sequence numbers; the tap's error
// events too, continuing the numbering.
#include "providers/openai/codec.hpp"
#include "surfaces/responses/request.hpp"
#include "surfaces/responses/tap.hpp"
#include "surfaces/surface.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace tailgate;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "responses_stream invariant violated: %s\n", what);
        std::abort();
    }
}

// Every `event: T\ndata: {...}\n\n` frame: JSON, type T, numbered from `next`.
void check_events(const std::string& out, int64_t& next) {
    size_t pos = 0;
    while (pos < out.size()) {
        check(out.compare(pos, 7, "event: ") == 0, "frames start with event:");
        const size_t nl = out.find('\n', pos);
        const size_t end = out.find("\n\n", nl);
        check(nl != std::string::npos && end != std::string::npos, "frames are complete");
        check(out.compare(nl + 1, 6, "data: ") == 0, "one data line follows");
        rapidjson::Document d;
        d.Parse(out.data() + nl + 7, end - nl - 7);
        check(!d.HasParseError() && d.IsObject(), "data is a JSON object");
        check(d.HasMember("type") && d["type"].IsString() &&
                  std::string_view(d["type"].GetString()) == std::string_view(out).substr(pos + 7, nl - pos - 7),
              "data's type is the event's");
        check(d.HasMember("sequence_number") && d["sequence_number"].IsInt64() &&
                  d["sequence_number"].GetInt64() == next,
              "sequence numbers are consecutive");
        ++next;
        pos = end + 2;
    }
}

const providers::ParsedBody& request(bool stream) {
    static const auto make = [](const char* body) {
        return std::get<providers::ParsedBody>(surfaces::responses::parse_request(body));
    };
    static const providers::ParsedBody streamed = make(R"({"model":"m","input":"x","stream":true})");
    static const providers::ParsedBody whole = make(R"({"model":"m","input":"x"})");
    return stream ? streamed : whole;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    const size_t cut = bytes.empty() ? 0 : data[0] % bytes.size();
    const auto& surface = surfaces::surface_for(Endpoint::Responses);

    // Native: pass-through, watched by the tap.
    auto native = providers::openai::native_codec().decoder(Endpoint::Responses, nullptr);
    surfaces::responses::Tap tap(true, true, "resp_prev");
    for (std::string_view part : {bytes.substr(0, cut), bytes.substr(cut)}) {
        const auto r = native->feed(part);
        tap.on_bytes(r.client);
    }
    std::string error;
    tap.stream_error(ApiError::bad_gateway("cut"), error);
    rapidjson::Document kept;
    if (!tap.finished().empty()) {
        kept.Parse(tap.finished().c_str());
        check(!kept.HasParseError() && kept.IsObject(), "the kept response is a JSON object");
    }

    // Translated: chat chunks rendered as typed events.
    auto translated = providers::openai::codec().decoder(
        Endpoint::Chat, surfaces::sink_for(surface, providers::openai::codec(), request(true), true));
    std::string out;
    for (std::string_view part : {bytes.substr(0, cut), bytes.substr(cut)}) out.append(translated->feed(part).client);
    int64_t next = 0;
    check_events(out, next);

    // A whole chat body rendered as one Response object.
    auto whole = providers::openai::codec().decoder(
        Endpoint::Chat, surfaces::sink_for(surface, providers::openai::codec(), request(false), false));
    std::string body(bytes);
    if (whole->decode_body(body).ok) {
        rapidjson::Document d;
        d.Parse(body.c_str());
        check(!d.HasParseError() && d.IsObject(), "a rendered Response is a JSON object");
    }
    return 0;
}

// Fuzz target: the multipart/form-data parser and rewriter of the audio
// endpoints (providers/multipart.hpp) and the surface that reads `model` from a
// form (surfaces/passthrough/). Byte 0 is the length of the Content-Type header
// value that follows; the rest is the body. Invariants: a refusal is a 400
// with a message; an accepted form's parts lie in order inside the body; the
// model rewrite parses again to the same parts, with only the model's value
// changed (or one model part added).
#include "providers/multipart.hpp"
#include "surfaces/passthrough/surface.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "multipart invariant violated: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tailgate::providers::multipart;
    if (size < 1) return 0;
    const size_t type_len = std::min<size_t>(data[0], size - 1);
    const std::string_view type(reinterpret_cast<const char*>(data) + 1, type_len);
    const std::string_view body(reinterpret_cast<const char*>(data) + 1 + type_len, size - 1 - type_len);

    Limits limits;
    limits.max_parts = 8;
    limits.max_part_header_bytes = 256;
    limits.max_name_bytes = 32;
    auto parsed = Form::parse(type, std::string(body), limits);
    if (auto* e = std::get_if<Error>(&parsed)) {
        check(!e->message.empty(), "a refusal says why");
    } else {
        const Form& f = std::get<Form>(parsed);
        check(!f.parts().empty() && f.parts().size() <= limits.max_parts, "1 to max_parts parts");
        size_t prev = 0;
        for (const Part& p : f.parts()) {
            check(!p.name.empty() && p.name.size() <= limits.max_name_bytes, "a part has a bounded name");
            check(prev <= p.begin && p.begin <= p.end && p.end <= body.size(), "parts lie in order inside the body");
            prev = p.end;
        }
        const std::string out = f.with_field("model", "fuzz-model");
        auto again = Form::parse(type, out, Limits{});
        check(std::holds_alternative<Form>(again), "the rewritten form parses");
        const Form& g = std::get<Form>(again);
        const bool had_model = f.find("model") != nullptr;
        check(g.parts().size() == f.parts().size() + (had_model ? 0 : 1), "the rewrite keeps every part");
        check(g.find("model") && g.value(*g.find("model")) == "fuzz-model", "the model is the deployment's");
        for (size_t i = 0; i < f.parts().size(); ++i) {
            const Part& a = f.parts()[i];
            const Part& b = g.parts()[i];
            check(a.name == b.name && a.filename == b.filename, "the parts keep their names");
            if (&a != f.find("model")) check(f.value(a) == g.value(b), "every other value is unchanged");
        }
        if (had_model) check(out.size() + f.value(*f.find("model")).size() == body.size() + 10, "only the model changed");
    }

    // The transcription surface on the same request: a 400, or a model to route by.
    const auto& op = tailgate::providers::operation(tailgate::Endpoint::AudioTranscriptions);
    auto req = tailgate::surfaces::passthrough::parse_form(body, type, op);
    if (auto* e = std::get_if<tailgate::ApiError>(&req)) {
        check(e->status == 400 && !e->message.empty(), "a bad form is a 400 with a message");
    } else {
        const auto& p = std::get<tailgate::providers::ParsedBody>(req);
        check(!p.model.empty() && p.form != nullptr, "an accepted form names a model");
        check(p.body_for("m").size() > 0, "and rebuilds");
    }
    return 0;
}

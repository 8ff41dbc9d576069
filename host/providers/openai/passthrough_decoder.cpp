// Reading the answers of OpenAI's pass-through endpoints (moderations, images,
// audio; providers/operations.hpp): the client gets the upstream's bytes as
// they are. A stream (audio speech; any of them with stream=true) is relayed
// byte for byte: its first byte is the commit point and the end of the HTTP
// body is its end. A whole body is checked only as far as its form says: one
// JSON object (moderations, images: a 2xx HTML page is a failed attempt, not
// an answer), or anything (transcriptions in text, srt or vtt).
#include "providers/openai/codec.hpp"

namespace tailgate::providers::openai {

namespace {

class PassThroughDecoder final : public ResponseDecoder {
public:
    explicit PassThroughDecoder(bool json_body) : json_body_(json_body) {}

    Decoded feed(std::string_view bytes) override {
        Decoded r;
        r.content = !bytes.empty();
        r.client = bytes;
        return r;
    }
    size_t pending() const override { return 0; }
    // The upstream's HTTP framing ends the body; a cut one arrives as an error.
    bool saw_done() const override { return true; }
    std::string_view end_marker() const override { return "the end of its body"; }
    const UpstreamError* stream_error() const override { return nullptr; }
    const std::string& malformed_excerpt() const override { return none_; }
    Usage usage() const override { return {}; }

    BodyDecoded decode_body(std::string& body) override {
        BodyDecoded out;
        if (!json_body_) {
            out.ok = true;
            return out;
        }
        rapidjson::Document d;
        if (!read_object_body(body, d, out)) return out;
        read_response_usage(d, out.usage);  // the image API's (gpt-image-1)
        return out;
    }

private:
    bool json_body_;
    std::string none_;
};

}  // namespace

ResponseDecoderPtr passthrough_decoder(bool json_body) { return std::make_unique<PassThroughDecoder>(json_body); }

}  // namespace tailgate::providers::openai

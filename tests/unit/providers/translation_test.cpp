// The seam end to end: a codec of another wire format, plugged in through
// Transport::codec/decoder only, drives the executor's commit rule from its
// normalized events, and the client gets OpenAI chunks rendered by the chat
// surface. This is the path a new provider directory (issue 19) takes.
#include "dispatch/executor.hpp"
#include "surfaces/surface.hpp"

#include "../dispatch/executor_fakes.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace tailgate;
using namespace tailgate::dispatch;
using namespace tailgate::dispatch::fakes;
using namespace std::chrono_literals;
using providers::Event;

namespace {

// A toy upstream wire: one frame per line, "text:<delta>", "usage:<p>,<c>",
// "error:<message>", "end".
class LineDecoder final : public providers::ResponseDecoder {
public:
    explicit LineDecoder(providers::EventSinkPtr sink) : sink_(std::move(sink)) {}
    providers::Decoded feed(std::string_view bytes) override {
        providers::Decoded r;
        partial_.append(bytes);
        size_t nl;
        while ((nl = partial_.find('\n')) != std::string::npos) {
            frame(partial_.substr(0, nl), r);
            partial_.erase(0, nl + 1);
        }
        out_.clear();
        sink_->take(out_);
        r.client = out_;
        return r;
    }
    size_t pending() const override { return partial_.size(); }
    bool saw_done() const override { return done_; }
    const providers::UpstreamError* stream_error() const override { return error_ ? &*error_ : nullptr; }
    const std::string& malformed_excerpt() const override { return none_; }
    providers::Usage usage() const override { return usage_; }
    providers::BodyDecoded decode_body(std::string& body) override {
        providers::Decoded ignored;
        frame(body, ignored);
        sink_->on_event(providers::make_event(Event::Kind::Done));
        body.clear();
        sink_->take(body);
        return {true, usage_, {}};
    }

private:
    void frame(const std::string& f, providers::Decoded& r) {
        if (f.rfind("text:", 0) == 0) {
            Event e = providers::make_event(Event::Kind::Content);
            e.text = std::string_view(f).substr(5);
            sink_->on_event(e);
            r.content = true;
        } else if (f.rfind("usage:", 0) == 0) {
            usage_ = {std::stoll(f.substr(6)), std::stoll(f.substr(f.find(',') + 1))};
            Event e = providers::make_event(Event::Kind::Usage);
            e.usage = usage_;
            sink_->on_event(e);
        } else if (f.rfind("error:", 0) == 0) {
            error_ = providers::UpstreamError{ErrorClass::RateLimit, 0, f.substr(6), 1500};
            r.error = &*error_;
        } else if (f == "end") {
            done_ = r.done = true;
            sink_->on_event(providers::make_event(Event::Kind::Done));
        }
    }
    providers::EventSinkPtr sink_;
    std::string partial_, out_, none_;
    bool done_ = false;
    std::optional<providers::UpstreamError> error_;
    providers::Usage usage_;
};

class LineCodec final : public providers::Codec {
public:
    std::string_view name() const override { return "lines"; }
    providers::Wire wire() const override { return providers::Wire::Gemini; }
    void build(const providers::CallSpec&, upstream::Request&) const override {}
    providers::ResponseDecoderPtr decoder(providers::EventSinkPtr sink) const override {
        return std::make_unique<LineDecoder>(std::move(sink));
    }
    providers::UpstreamError decode_error(const upstream::ResponseHead& h, std::string_view body) const override {
        return {ErrorClass::Server, h.status, "lines said: " + std::string(body), 700};
    }
};

// FakeTransport's scripted calls, read through LineCodec and the chat surface.
class LineTransport final : public Transport {
public:
    upstream::CallPtr start(uint32_t i, std::shared_ptr<upstream::Handler> h) override { return fake.start(i, h); }
    const providers::Codec& codec(uint32_t) const override { return codec_; }
    providers::ResponseDecoderPtr decoder(uint32_t) const override {
        return codec_.decoder(surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), codec_, stream));
    }
    FakeTransport fake;
    bool stream = true;

private:
    LineCodec codec_;
};

class Sink final : public Downstream {
public:
    void commit(uint32_t a, const upstream::ResponseHead&, std::string bytes) override {
        committed = a;
        body = std::move(bytes);
    }
    void data(std::string_view bytes) override { body.append(bytes); }
    void finish(const ApiError* e) override {
        finished = true;
        if (e) error = *e;
    }
    void fail(const ApiError& e) override { error = e; }
    std::optional<uint32_t> committed;
    std::string body;
    bool finished = false;
    std::optional<ApiError> error;
};

struct Translation : ::testing::Test {
    FakeScheduler sched;
    std::shared_ptr<LineTransport> transport = std::make_shared<LineTransport>();
    std::shared_ptr<Sink> down = std::make_shared<Sink>();
    std::shared_ptr<RecordingObserver> obs = std::make_shared<RecordingObserver>();
    ExecutorPtr make(std::vector<AttemptSpec> attempts, bool stream) {
        Plan p;
        p.attempts = std::move(attempts);
        p.stream = stream;
        transport->stream = stream;
        return std::make_shared<Executor>(std::move(p), sched, transport, down, obs);
    }
    upstream::Handler& h(uint32_t i) { return transport->fake.h(i); }
};

}  // namespace

TEST_F(Translation, RaceCommitsOnTheFirstTranslatedContentAndRelaysOpenAIChunks) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AtStart, 0ms}}, true);
    ex->start();
    h(0).on_head(head(200));
    h(1).on_head(head(200));
    h(1).on_body("usage:3,");
    EXPECT_FALSE(down->committed) << "no content yet, and the frame is incomplete";
    h(1).on_body("0\ntext:Hi");
    EXPECT_FALSE(down->committed);
    h(1).on_body("\n");
    ASSERT_EQ(down->committed, 1u) << "commit at the first content event";
    EXPECT_TRUE(transport->fake.cancelled(0)) << "the loser is closed";
    h(1).on_body("text: there\nusage:3,5\nend\n");
    h(1).on_done();
    EXPECT_TRUE(down->finished);
    EXPECT_FALSE(down->error);
    EXPECT_NE(down->body.find("\"object\":\"chat.completion.chunk\""), std::string::npos) << down->body;
    EXPECT_NE(down->body.find("\"delta\":{\"content\":\"Hi\"}"), std::string::npos) << down->body;
    EXPECT_NE(down->body.find("\"delta\":{\"content\":\" there\"}"), std::string::npos) << down->body;
    EXPECT_EQ(down->body.substr(down->body.size() - 14), "data: [DONE]\n\n");
    EXPECT_EQ(down->body.find("text:"), std::string::npos) << "no upstream frame reaches the client";
    ASSERT_EQ(obs->count(EventType::Success, 1), 1);
    EXPECT_EQ(obs->events.back().prompt_tokens, 3);
    EXPECT_EQ(obs->events.back().completion_tokens, 5);
}

TEST_F(Translation, AnErrorEventBeforeContentFailsOverWithItsClassAndRetryAfter) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}}, true);
    ex->start();
    h(0).on_head(head(200));
    h(0).on_body("error:busy\n");
    ASSERT_EQ(obs->count(EventType::Failure, 0), 1);
    const auto failed = *std::find_if(obs->events.begin(), obs->events.end(),
                                      [](const AttemptEvent& e) { return e.type == EventType::Failure; });
    EXPECT_EQ(failed.error_class, ErrorClass::RateLimit);
    EXPECT_EQ(failed.retry_after_ms, 1500);
    EXPECT_TRUE(transport->fake.cancelled(0));
    EXPECT_EQ(transport->fake.order.size(), 2u) << "retryable: the next attempt runs";
}

TEST_F(Translation, ErrorStatusesAreReadByTheCodec) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, false);
    ex->start();
    h(0).on_head(head(503));
    h(0).on_body("down");
    h(0).on_done();
    ASSERT_TRUE(down->error);
    EXPECT_EQ(down->error->status, 503);
    EXPECT_EQ(down->error->message, "lines said: down");
    EXPECT_EQ(down->error->retry_after_s, 1);
}

TEST_F(Translation, NonStreamBodiesAreRenderedWhole) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, false);
    ex->start();
    h(0).on_head(head(200));
    h(0).on_body("text:whole");
    h(0).on_done();
    ASSERT_EQ(down->committed, 0u);
    EXPECT_NE(down->body.find("\"object\":\"chat.completion\""), std::string::npos) << down->body;
    EXPECT_NE(down->body.find("\"content\":\"whole\""), std::string::npos) << down->body;
}

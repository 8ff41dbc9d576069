// Executor plans on a fake clock and a scripted fake upstream.
#include "dispatch/executor.hpp"
#include "executor_fakes.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace tailgate;
using namespace tailgate::dispatch;
using namespace tailgate::dispatch::fakes;
using namespace std::chrono_literals;

namespace {

class FakeDownstream final : public Downstream {
public:
    void commit(uint32_t attempt, const upstream::ResponseHead& head, std::string bytes) override {
        committed = attempt;
        status = head.status;
        body = std::move(bytes);
    }
    void data(std::string_view bytes) override { body.append(bytes); }
    void finish(const ApiError* e) override {
        finished = true;
        if (e) finish_error = *e;
    }
    void fail(const ApiError& e) override { failed = e; }
    void flush() override { ++flushes; }
    bool congested() override { return body.size() >= congest_at; }
    size_t congest_at = SIZE_MAX;
    int flushes = 0;
    std::optional<uint32_t> committed;
    int status = 0;
    std::string body;
    bool finished = false;
    std::optional<ApiError> finish_error;
    std::optional<ApiError> failed;
};

const std::string kRoleChunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const std::string kContentChunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
const std::string kDone = "data: [DONE]\n\n";

struct ExecutorPlan : ::testing::Test {
    FakeScheduler sched;
    std::shared_ptr<FakeTransport> transport = std::make_shared<FakeTransport>();
    std::shared_ptr<FakeDownstream> down = std::make_shared<FakeDownstream>();
    std::shared_ptr<RecordingObserver> obs = std::make_shared<RecordingObserver>();

    ExecutorPtr make(std::vector<AttemptSpec> attempts, bool stream = false) {
        Plan p;
        p.attempts = std::move(attempts);
        p.stream = stream;
        return std::make_shared<Executor>(std::move(p), sched, transport, down, obs);
    }
    void ok_json(uint32_t i, const std::string& body) {
        transport->h(i).on_head(head(200));
        transport->h(i).on_body(body);
        transport->h(i).on_done();
    }
};

}  // namespace

TEST_F(ExecutorPlan, SingleAttemptSuccessCommitsBody) {
    auto ex = make({{0, Launch::AtStart, 0ms}});
    ex->start();
    ASSERT_EQ(transport->order.size(), 1u);
    ok_json(0, "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}");
    EXPECT_EQ(down->committed, 0u);
    EXPECT_EQ(down->status, 200);
    EXPECT_TRUE(ex->finished());
    ASSERT_EQ(obs->count(EventType::Success, 0), 1);
    auto& ev = obs->events.back();
    EXPECT_EQ(ev.prompt_tokens, 3);
    EXPECT_EQ(ev.completion_tokens, 5);
}

TEST_F(ExecutorPlan, RaceLaunchesAllAtStartAndCancelsLosers) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AtStart, 0ms}, {2, Launch::AtStart, 0ms}});
    ex->start();
    EXPECT_EQ(transport->order, (std::vector<uint32_t>{0, 1, 2}));
    ok_json(1, "{}");
    EXPECT_EQ(down->committed, 1u);
    EXPECT_TRUE(transport->cancelled(0));
    EXPECT_TRUE(transport->cancelled(2));
    EXPECT_FALSE(transport->cancelled(1));
    EXPECT_EQ(obs->count(EventType::Cancelled, 0), 1);
    EXPECT_EQ(obs->count(EventType::Cancelled, 2), 1);
    // A loser's late bytes never reach the client.
    transport->h(0).on_head(head(200));
    transport->h(0).on_body("LATE");
    EXPECT_EQ(down->body, "{}");
}

TEST_F(ExecutorPlan, HedgeLaunchesAfterDelayUnlessCommitted) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 300ms}});
    ex->start();
    sched.advance(299ms);
    EXPECT_EQ(transport->order.size(), 1u);
    sched.advance(1ms);
    ASSERT_EQ(transport->order.size(), 2u);
    ok_json(1, "{\"from\":1}");
    EXPECT_EQ(down->committed, 1u);
    EXPECT_TRUE(transport->cancelled(0));
}

TEST_F(ExecutorPlan, HedgeNotLaunchedWhenPrimaryCommitsFirst) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 300ms}});
    ex->start();
    sched.advance(100ms);
    ok_json(0, "{}");
    sched.advance(1s);
    EXPECT_EQ(transport->order.size(), 1u);
    EXPECT_EQ(down->committed, 0u);
}

TEST_F(ExecutorPlan, HedgeFiresAtOnceWhenPrimaryFailsFast) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 300ms}});
    ex->start();
    sched.advance(10ms);
    transport->h(0).on_error(upstream::ErrorKind::Connect, "refused");
    ASSERT_EQ(transport->order.size(), 2u) << "retryable failure must launch the hedge immediately";
    ok_json(1, "{}");
    EXPECT_EQ(down->committed, 1u);
    EXPECT_EQ(obs->count(EventType::Failure, 0), 1);
}

TEST_F(ExecutorPlan, OnFailureWaitsForBackoffThenRetries) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 50ms}});
    ex->start();
    transport->h(0).on_head(head(503));
    transport->h(0).on_body("{\"error\":{\"message\":\"overloaded\"}}");
    transport->h(0).on_done();
    EXPECT_EQ(transport->order.size(), 1u);
    sched.advance(49ms);
    EXPECT_EQ(transport->order.size(), 1u);
    sched.advance(1ms);
    ASSERT_EQ(transport->order.size(), 2u);
    ok_json(1, "{}");
    EXPECT_EQ(down->committed, 1u);
}

TEST_F(ExecutorPlan, OnFailureNotLaunchedWhilePrimaryRuns) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}});
    ex->start();
    sched.advance(10s);
    EXPECT_EQ(transport->order.size(), 1u);
}

TEST_F(ExecutorPlan, NonRetryableFailureStopsThePlan) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}});
    ex->start();
    transport->h(0).on_head(head(400));
    transport->h(0).on_body("{\"error\":{\"message\":\"bad messages\"}}");
    transport->h(0).on_done();
    EXPECT_EQ(transport->order.size(), 1u);
    ASSERT_TRUE(down->failed);
    EXPECT_EQ(down->failed->status, 400);
    EXPECT_EQ(down->failed->message, "bad messages");
    EXPECT_EQ(down->failed->type, "invalid_request_error");
}

TEST_F(ExecutorPlan, AllFailPicksMostInformativeError) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AtStart, 0ms}});
    ex->start();
    transport->h(0).on_error(upstream::ErrorKind::Connect, "refused");
    upstream::ResponseHead h = head(429);
    h.headers.push_back({"retry-after", "7"});
    transport->h(1).on_head(h);
    transport->h(1).on_body("{\"error\":{\"message\":\"slow down\"}}");
    transport->h(1).on_done();
    ASSERT_TRUE(down->failed);
    EXPECT_EQ(down->failed->status, 429);
    EXPECT_EQ(down->failed->retry_after_s, 7);
    EXPECT_EQ(down->failed->type, "rate_limit_error");
}

TEST_F(ExecutorPlan, ConnectAndTimeoutMapTo502And504) {
    auto ex = make({{0, Launch::AtStart, 0ms}});
    ex->start();
    transport->h(0).on_error(upstream::ErrorKind::Timeout, "first byte timeout after 5 ms");
    ASSERT_TRUE(down->failed);
    EXPECT_EQ(down->failed->status, 504);

    auto down2 = std::make_shared<FakeDownstream>();
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}};
    auto t2 = std::make_shared<FakeTransport>();
    auto ex2 = std::make_shared<Executor>(p, sched, t2, down2, obs);
    ex2->start();
    t2->h(0).on_error(upstream::ErrorKind::Connect, "connection refused");
    ASSERT_TRUE(down2->failed);
    EXPECT_EQ(down2->failed->status, 502);
}

TEST_F(ExecutorPlan, StreamCommitsOnFirstContentNotOnHeaders) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk);  // headers + role chunk: not yet content
    EXPECT_FALSE(down->committed);
    sched.advance(5ms);
    transport->h(1).on_head(head(200));
    transport->h(1).on_body(kRoleChunk + kContentChunk.substr(0, 20));
    EXPECT_FALSE(down->committed);
    transport->h(1).on_body(kContentChunk.substr(20));
    ASSERT_EQ(down->committed, 1u);
    EXPECT_TRUE(transport->cancelled(0));
    EXPECT_EQ(down->body, kRoleChunk + kContentChunk) << "buffered bytes are flushed at commit";
    transport->h(1).on_body(kDone);
    transport->h(1).on_done();
    EXPECT_TRUE(down->finished);
    EXPECT_FALSE(down->finish_error);
    EXPECT_EQ(obs->count(EventType::FirstByte, 1), 1);
    EXPECT_EQ(obs->count(EventType::Success, 1), 1);
}

TEST_F(ExecutorPlan, ToolCallDeltaCountsAsContent) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\"}}]}}]}\n\n");
    EXPECT_EQ(down->committed, 0u);
}

TEST_F(ExecutorPlan, FailureAfterCommitIsAnErrorNotACleanEnd) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kContentChunk);
    ASSERT_EQ(down->committed, 0u);
    transport->h(0).on_error(upstream::ErrorKind::Protocol, "connection reset");
    EXPECT_TRUE(down->finished);
    ASSERT_TRUE(down->finish_error);
    EXPECT_EQ(transport->order.size(), 1u) << "no retry after the commit point";
}

TEST_F(ExecutorPlan, StreamWithoutDoneIsReportedAsTruncated) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kContentChunk);
    transport->h(0).on_done();
    ASSERT_TRUE(down->finish_error);
    EXPECT_EQ(down->finish_error->code, "upstream_stream_truncated");
}

TEST_F(ExecutorPlan, StreamErrorEventBeforeContentFailsOverToNextAttempt) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body("data: {\"error\":{\"message\":\"boom\"}}\n\n");
    ASSERT_EQ(transport->order.size(), 2u);
    EXPECT_TRUE(transport->cancelled(0));
}

TEST_F(ExecutorPlan, FirstContentTimeoutFailsTheAttempt) {
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}};
    p.stream = true;
    p.first_content_timeout = 200ms;
    auto ex = std::make_shared<Executor>(p, sched, transport, down, obs);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk);
    sched.advance(199ms);
    EXPECT_EQ(transport->order.size(), 1u);
    sched.advance(1ms);
    EXPECT_TRUE(transport->cancelled(0));
    ASSERT_EQ(transport->order.size(), 2u);
}

TEST_F(ExecutorPlan, ClientCancelCancelsEverythingSilently) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 100ms}});
    ex->start();
    ex->cancel();
    EXPECT_TRUE(transport->cancelled(0));
    sched.advance(1s);
    EXPECT_EQ(transport->order.size(), 1u) << "no hedge after the client left";
    EXPECT_FALSE(down->committed);
    EXPECT_FALSE(down->failed);
    EXPECT_EQ(obs->count(EventType::Cancelled, 0), 1);
}

TEST_F(ExecutorPlan, CommitAndCancelRaceHasOneOutcome) {
    // The loser's completion arrives after it was cancelled: ignored, no double commit.
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AtStart, 0ms}});
    ex->start();
    ok_json(0, "{\"a\":0}");
    ok_json(1, "{\"a\":1}");
    EXPECT_EQ(down->committed, 0u);
    EXPECT_EQ(down->body, "{\"a\":0}");
    EXPECT_EQ(obs->count(EventType::Success, 1), 0);
    EXPECT_EQ(obs->count(EventType::Cancelled, 1), 1);
    EXPECT_EQ(obs->count(EventType::Failure, 1), 0) << "cancellation is not a failure";
}

TEST_F(ExecutorPlan, EmptyPlanFailsWith503) {
    auto ex = make({});
    ex->start();
    ASSERT_TRUE(down->failed);
    EXPECT_EQ(down->failed->status, 503);
}

TEST_F(ExecutorPlan, ContextWindowFallbackOnlyAfterContextLengthError) {
    AttemptSpec cw{2, Launch::OnFailure, 0ms, 1, true};
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}, cw});
    ex->start();
    transport->h(0).on_head(head(400));
    transport->h(0).on_body("{\"error\":{\"code\":\"context_length_exceeded\",\"message\":\"too long\"}}");
    transport->h(0).on_done();
    ASSERT_EQ(transport->order, (std::vector<uint32_t>{0, 2})) << "skips the same-group retry, goes to the cw fallback";
    ok_json(2, "{}");
    EXPECT_EQ(down->committed, 2u);
    EXPECT_EQ(ex->launched(), 2u);
}

TEST_F(ExecutorPlan, ContextWindowFallbackNotUsedForOtherFailures) {
    AttemptSpec cw{2, Launch::OnFailure, 0ms, 1, true};
    auto ex = make({{0, Launch::AtStart, 0ms}, cw});
    ex->start();
    transport->h(0).on_error(upstream::ErrorKind::Connect, "refused");
    EXPECT_EQ(transport->order.size(), 1u);
    ASSERT_TRUE(down->failed);
    EXPECT_EQ(down->failed->status, 502);
}

TEST_F(ExecutorPlan, RefusedHedgeLeavesTheRequestUnhedged) {
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 100ms}, {2, Launch::AfterDelay, 100ms}};
    std::vector<std::pair<uint32_t, double>> asked;
    p.admit = [&](uint32_t i, double elapsed) {
        asked.emplace_back(i, elapsed);
        return false;
    };
    auto ex = std::make_shared<Executor>(p, sched, transport, down, obs);
    ex->start();
    sched.advance(1s);
    ASSERT_EQ(asked.size(), 1u) << "after one refusal no further hedges are tried";
    EXPECT_EQ(asked[0].first, 1u);
    EXPECT_DOUBLE_EQ(asked[0].second, 100.0);
    EXPECT_EQ(transport->order.size(), 1u);
    EXPECT_EQ(obs->count(EventType::Refused, 1), 1);
    ok_json(0, "{}");
    EXPECT_EQ(down->committed, 0u);
}

TEST_F(ExecutorPlan, AdmitNotAskedForFailover) {
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 100ms}};
    int asked = 0;
    p.admit = [&](uint32_t, double) {
        ++asked;
        return false;
    };
    auto ex = std::make_shared<Executor>(p, sched, transport, down, obs);
    ex->start();
    transport->h(0).on_error(upstream::ErrorKind::Connect, "refused");
    EXPECT_EQ(asked, 0) << "the primary failed: launching the next is failover, not extra load";
    EXPECT_EQ(transport->order.size(), 2u);
}

TEST_F(ExecutorPlan, ShadowedPrimaryRunsToCompletionOffTheClientPath) {
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 100ms}};
    p.shadow_sample_rate = 1.0;
    auto ex = std::make_shared<Executor>(p, sched, transport, down, obs);
    ex->start();
    sched.advance(100ms);
    ASSERT_EQ(transport->order.size(), 2u);
    sched.advance(20ms);
    ok_json(1, "{\"from\":1}");
    EXPECT_EQ(down->committed, 1u);
    EXPECT_FALSE(transport->cancelled(0)) << "the lost primary keeps running as a shadow";
    EXPECT_EQ(obs->count(EventType::Cancelled, 0), 0);
    sched.advance(380ms);
    ok_json(0, "{\"from\":0}");
    EXPECT_EQ(down->body, "{\"from\":1}") << "nothing of the shadow reaches the client";
    ASSERT_EQ(obs->count(EventType::ShadowDone, 0), 1);
    EXPECT_DOUBLE_EQ(obs->events.back().elapsed_ms, 500.0) << "its true latency";
}

TEST_F(ExecutorPlan, ShadowIsCancelledWhenTheClientLeaves) {
    Plan p;
    p.attempts = {{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 100ms}};
    p.stream = true;
    p.shadow_sample_rate = 1.0;
    auto ex = std::make_shared<Executor>(p, sched, transport, down, obs);
    ex->start();
    sched.advance(100ms);
    transport->h(1).on_head(head(200));
    transport->h(1).on_body(kContentChunk);
    ASSERT_EQ(down->committed, 1u);
    ex->cancel();
    EXPECT_TRUE(transport->cancelled(0));
    EXPECT_TRUE(transport->cancelled(1));
    EXPECT_EQ(obs->count(EventType::ShadowDone, 0), 0);
}

TEST(ExecutorClassify, StatusClasses) {
    EXPECT_EQ(classify_status(429, ""), ErrorClass::RateLimit);
    EXPECT_EQ(classify_status(503, ""), ErrorClass::Server);
    EXPECT_EQ(classify_status(401, ""), ErrorClass::Auth);
    EXPECT_EQ(classify_status(404, ""), ErrorClass::NotFound);
    EXPECT_EQ(classify_status(400, "{\"error\":{\"code\":\"context_length_exceeded\"}}"), ErrorClass::ContextWindow);
    EXPECT_EQ(classify_status(400, "{}"), ErrorClass::BadRequest);
    EXPECT_FALSE(is_retryable(ErrorClass::BadRequest));
    EXPECT_TRUE(is_retryable(ErrorClass::Timeout));
}

TEST(ExecutorRetryAfter, ParsesBothHeaders) {
    upstream::ResponseHead h;
    h.headers = {{"retry-after", "3"}};
    EXPECT_EQ(retry_after_ms(h), 3000);
    h.headers = {{"retry-after-ms", "250"}, {"retry-after", "3"}};
    EXPECT_EQ(retry_after_ms(h), 250);
    h.headers = {};
    EXPECT_EQ(retry_after_ms(h), -1);
}

TEST_F(ExecutorPlan, CongestedClientPausesTheWinnerUntilResumed) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk + kContentChunk);
    ASSERT_EQ(down->committed, 0u);
    EXPECT_EQ(transport->call(0).pauses, 0);
    down->congest_at = down->body.size() + 1;  // the next event fills the client's buffer
    transport->h(0).on_body(kContentChunk);
    EXPECT_EQ(transport->call(0).pauses, 1);
    transport->h(0).on_body(kContentChunk);  // bytes already read still arrive: one pause
    EXPECT_EQ(transport->call(0).pauses, 1);
    ex->resume_reading();
    EXPECT_EQ(transport->call(0).resumes, 1);
    ex->resume_reading();  // not paused any more: nothing to do
    EXPECT_EQ(transport->call(0).resumes, 1);
    transport->h(0).on_body(kDone);
    transport->h(0).on_done();
    EXPECT_TRUE(down->finished);
    EXPECT_EQ(down->body, kRoleChunk + kContentChunk + kContentChunk + kContentChunk + kDone);
}

TEST_F(ExecutorPlan, DownstreamIsFlushedAfterEveryEntryPoint) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    const int after_start = down->flushes;
    EXPECT_GE(after_start, 1);
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk + kContentChunk);
    EXPECT_EQ(down->flushes, after_start + 2);
    transport->h(0).on_body(kDone);
    transport->h(0).on_done();
    EXPECT_TRUE(down->finished);
    EXPECT_EQ(down->flushes, after_start + 4);
}

TEST_F(ExecutorPlan, NonJsonSuccessBodyIsARetryableFailure) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}});
    ex->start();
    ok_json(0, "<html><body>502 Bad Gateway</body></html>");
    EXPECT_FALSE(down->committed);
    ASSERT_EQ(transport->order.size(), 2u);
    ok_json(1, "{\"choices\":[]}");
    EXPECT_EQ(down->committed, 1u);
    EXPECT_EQ(ex->records()[0].error_class, ErrorClass::Protocol);
}

TEST_F(ExecutorPlan, MalformedEventAfterCommitIsNotRelayedAndEndsWithAnError) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kContentChunk);
    ASSERT_EQ(down->committed, 0u);
    transport->h(0).on_body(kContentChunk + "data: {\"choices\":[{\"delta\n\n" + kContentChunk + kDone);
    EXPECT_EQ(down->body, kContentChunk + kContentChunk);
    ASSERT_TRUE(down->finish_error);
    EXPECT_EQ(down->finish_error->code, "upstream_protocol_error");
    EXPECT_TRUE(transport->cancelled(0));
    EXPECT_EQ(obs->count(EventType::Failure, 0), 1);
}

TEST_F(ExecutorPlan, HalfAnEventIsNeverRelayedBeforeTheStreamError) {
    auto ex = make({{0, Launch::AtStart, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kContentChunk + kContentChunk.substr(0, 15));
    ASSERT_EQ(down->committed, 0u);
    EXPECT_EQ(down->body, kContentChunk) << "the incomplete event waits";
    transport->h(0).on_error(upstream::ErrorKind::Protocol, "closed mid-body");
    EXPECT_EQ(down->body, kContentChunk);
    ASSERT_TRUE(down->finish_error);
}

TEST_F(ExecutorPlan, MalformedEventBeforeContentFailsOver) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk + "data: oops\n\n");
    EXPECT_FALSE(down->committed);
    EXPECT_TRUE(transport->cancelled(0));
    ASSERT_EQ(transport->order.size(), 2u);
}

TEST_F(ExecutorPlan, ContentThenMalformedInOneReadCommitsThenFails) {
    // Same outcome as when the two events arrive in separate reads.
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::OnFailure, 0ms}}, true);
    ex->start();
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kRoleChunk + kContentChunk + "data: {\"choices\n\n" + kContentChunk);
    ASSERT_EQ(down->committed, 0u);
    EXPECT_EQ(down->body, kRoleChunk + kContentChunk);
    ASSERT_TRUE(down->finish_error);
    EXPECT_EQ(down->finish_error->code, "upstream_protocol_error");
    EXPECT_EQ(transport->order.size(), 1u) << "no retry after the commit point";
    EXPECT_TRUE(transport->cancelled(0));
}

// A client that hangs up at once can make the relay cancel() before start():
// nothing may be launched afterwards (it would run unobserved, outside admission).
TEST_F(ExecutorPlan, CancelBeforeStartLaunchesNothing) {
    auto ex = make({{0, Launch::AtStart, 0ms}, {1, Launch::AfterDelay, 10ms}});
    ex->cancel();
    ex->start();
    sched.advance(50ms);
    EXPECT_TRUE(transport->started.empty());
    EXPECT_EQ(ex->launched(), 0u);
    EXPECT_TRUE(ex->finished());
    EXPECT_TRUE(obs->events.empty());
}

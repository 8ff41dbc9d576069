// The Responses tap: what the client got, watched on its way out — numbering
// continued by a mid-stream error, the finished Response kept (with the
// previous_response_id a native upstream never saw), nothing kept when not asked.
#include "surfaces/responses/tap.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

using namespace tailgate;
using tailgate::surfaces::responses::Tap;

namespace {

std::string event(const std::string& type, int seq, const std::string& body) {
    return "event: " + type + "\ndata: {\"type\":\"" + type + "\",\"sequence_number\":" + std::to_string(seq) +
           (body.empty() ? "" : "," + body) + "}\n\n";
}

const std::string kCreated = event("response.created", 0,
    R"("response":{"id":"resp_up","object":"response","created_at":1700000000,"status":"in_progress","error":null,"model":"m","output":[],"previous_response_id":null})");
const std::string kDelta = event("response.output_text.delta", 1, R"("item_id":"msg_1","output_index":0,"content_index":0,"delta":"response.completed")");
const std::string kCompleted = event("response.completed", 2,
    R"("response":{"id":"resp_up","object":"response","created_at":1700000000,"status":"completed","model":"m","output":[{"type":"message","id":"msg_1","content":[{"type":"output_text","text":"hi"}]}],"previous_response_id":null})");

rapidjson::Document json(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    EXPECT_FALSE(d.HasParseError()) << s;
    return d;
}

TEST(ResponsesTap, KeepsTheFinishedResponseWithItsPreviousId) {
    Tap tap(true, true, "resp_prev");
    const std::string all = kCreated + kDelta + kCompleted;
    tap.on_bytes(all.substr(0, 37));  // frames cut anywhere
    tap.on_bytes(all.substr(37));
    EXPECT_EQ(tap.id(), "resp_up");
    EXPECT_EQ(tap.created_at(), 1700000000);
    const auto r = json(tap.finished());
    EXPECT_EQ(std::string(r["status"].GetString()), "completed");
    EXPECT_EQ(std::string(r["previous_response_id"].GetString()), "resp_prev");
    EXPECT_EQ(json(tap.output())[0]["id"], "msg_1");
}

TEST(ResponsesTap, AStreamErrorContinuesTheNumberingAndFailsTheSameResponse) {
    Tap tap(true, true);
    tap.on_bytes(kCreated + kDelta);  // a delta whose text names an event type fools nothing
    EXPECT_TRUE(tap.finished().empty());
    std::string out;
    tap.stream_error(ApiError::bad_gateway("upstream connection lost mid-stream", "upstream_stream_interrupted"), out);
    const size_t split = out.find("\n\n") + 2;
    const std::string error = out.substr(0, split), failed = out.substr(split);
    ASSERT_EQ(error.rfind("event: error\ndata: ", 0), 0u) << out;
    ASSERT_EQ(failed.rfind("event: response.failed\ndata: ", 0), 0u) << out;
    const auto e = json(error.substr(error.find("data: ") + 6));
    EXPECT_EQ(e["sequence_number"].GetInt(), 2);
    EXPECT_EQ(std::string(e["code"].GetString()), "upstream_stream_interrupted");
    const auto f = json(failed.substr(failed.find("data: ") + 6));
    EXPECT_EQ(f["sequence_number"].GetInt(), 3);
    EXPECT_EQ(std::string(f["response"]["id"].GetString()), "resp_up");
    EXPECT_EQ(std::string(f["response"]["status"].GetString()), "failed");
    EXPECT_EQ(std::string(f["response"]["error"]["message"].GetString()), "upstream connection lost mid-stream");
}

TEST(ResponsesTap, NonStreamBodiesAndStoreFalse) {
    Tap kept(false, true);
    kept.on_bytes(R"({"id":"resp_1","status":"incomplete","created_at":5,"output":[]})");
    EXPECT_EQ(kept.id(), "resp_1");
    EXPECT_EQ(kept.output(), "[]");
    Tap failed(false, true);
    failed.on_bytes(R"({"id":"resp_2","status":"failed","output":[]})");
    EXPECT_TRUE(failed.finished().empty());
    Tap not_kept(true, false);
    not_kept.on_bytes(kCreated + kCompleted);
    EXPECT_TRUE(not_kept.finished().empty());
    std::string out;
    not_kept.stream_error(ApiError::internal("x"), out);  // numbering still tracked
    EXPECT_NE(out.find("\"sequence_number\":3"), std::string::npos) << out;
}

}  // namespace

namespace {

TEST(ResponsesTap, TheUpstreamsOwnErrorEventsAreNotRepeated) {
    Tap failed(true, true);
    failed.on_bytes(kCreated + event("response.failed", 1, R"("response":{"id":"resp_up","status":"failed"})"));
    std::string out;
    failed.stream_error(ApiError::bad_gateway("upstream stream error: boom", "upstream_stream_error"), out);
    EXPECT_EQ(out, "");
    Tap errored(true, true);
    errored.on_bytes(kCreated + event("error", 1, R"("code":"server_error","message":"boom","param":null)"));
    errored.stream_error(ApiError::bad_gateway("upstream stream error: boom", "upstream_stream_error"), out);
    EXPECT_EQ(out.rfind("event: response.failed\n", 0), 0u) << out;
    EXPECT_NE(out.find("\"sequence_number\":2"), std::string::npos) << out;
}

}  // namespace

// The Responses API's stored responses: read-your-writes before the writer
// thread ran, owners, chains, deletes, retention, the memory cap, and rows that
// outlive the process in the state directory's SQLite file.
#include "control/response_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

using namespace tailgate::control;
using namespace std::chrono_literals;

namespace {

StoredResponse row(std::string id, std::string previous = "", std::string owner = "me") {
    StoredResponse r;
    r.id = std::move(id);
    r.owner = std::move(owner);
    r.created_at = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    r.previous_id = std::move(previous);
    r.input_items = R"([{"role":"user","content":")" + r.id + R"("}])";
    r.output = "[]";
    r.response = R"({"id":")" + r.id + R"("})";
    return r;
}

struct TempDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("tailgate-response-store-" + std::to_string(std::random_device{}()));
    ~TempDir() { std::filesystem::remove_all(path); }
};

void exercise(ResponseStore& s) {
    s.put(row("resp_a"));
    s.put(row("resp_b", "resp_a"));
    s.put(row("resp_c", "resp_b"));
    // Readable at once, whether or not the writer has run.
    ASSERT_TRUE(s.get("resp_b", "me"));
    EXPECT_EQ(s.get("resp_b", "me")->previous_id, "resp_a");
    EXPECT_FALSE(s.get("resp_b", "someone else"));  // another key's: as if absent
    const auto chain = s.chain("resp_c", "me", 10);
    ASSERT_EQ(chain.size(), 3u);
    EXPECT_EQ(chain[0].id, "resp_a");
    EXPECT_EQ(chain[2].id, "resp_c");
    EXPECT_EQ(s.chain("resp_c", "me", 2).size(), 2u);  // bounded: the newest turns
    EXPECT_EQ(s.chain("resp_c", "me", 2)[0].id, "resp_b");
    EXPECT_TRUE(s.chain("resp_x", "me", 10).empty());
    EXPECT_FALSE(s.remove("resp_b", "someone else"));
    EXPECT_TRUE(s.remove("resp_b", "me"));
    EXPECT_FALSE(s.get("resp_b", "me"));
    EXPECT_FALSE(s.remove("resp_b", "me"));
    // The conversation now starts after the deleted turn.
    EXPECT_EQ(s.chain("resp_c", "me", 10).size(), 1u);
}

TEST(ResponseStore, MemoryReadsWritesChainsDeletes) {
    auto s = open_response_store("", 1h);
    exercise(*s);
}

TEST(ResponseStore, SqliteReadsWritesChainsDeletes) {
    TempDir dir;
    auto s = open_response_store(dir.path.string(), 1h);
    exercise(*s);
}

TEST(ResponseStore, SqliteRowsOutliveTheProcessAndTheirDeletesToo) {
    TempDir dir;
    {
        auto s = open_response_store(dir.path.string(), 1h);
        s->put(row("resp_keep"));
        s->put(row("resp_gone"));
        EXPECT_TRUE(s->remove("resp_gone", "me"));
    }  // the writer drains its queue before the store closes
    auto again = open_response_store(dir.path.string(), 1h);
    ASSERT_TRUE(again->get("resp_keep", "me"));
    EXPECT_EQ(again->get("resp_keep", "me")->response, R"({"id":"resp_keep"})");
    EXPECT_FALSE(again->get("resp_gone", "me"));
    EXPECT_TRUE(std::filesystem::exists(dir.path / "tailgate-state.db"));
    EXPECT_EQ(std::filesystem::status(dir.path / "tailgate-state.db").permissions() &
                  (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
              std::filesystem::perms::none);
}

TEST(ResponseStore, ManyRowsAreWrittenInBatchesAndAllSurvive) {
    TempDir dir;
    constexpr int kRows = 700;  // more than one batch
    {
        auto s = open_response_store(dir.path.string(), 1h);
        std::thread reader([&] {
            for (int i = 0; i < kRows; ++i) s->get("resp_" + std::to_string(i), "me");  // reads while batches commit
        });
        for (int i = 0; i < kRows; ++i) s->put(row("resp_" + std::to_string(i)));
        reader.join();
        for (int i = 0; i < kRows; i += 50) EXPECT_TRUE(s->get("resp_" + std::to_string(i), "me")) << i;
    }
    auto again = open_response_store(dir.path.string(), 1h);
    for (int i = 0; i < kRows; ++i) ASSERT_TRUE(again->get("resp_" + std::to_string(i), "me")) << i;
}

TEST(ResponseStore, RetentionZeroKeepsNothingAndExpiredRowsAreGone) {
    auto none = open_response_store("", 0ms);
    none->put(row("resp_a"));
    EXPECT_FALSE(none->get("resp_a", "me"));

    TempDir dir;
    auto s = open_response_store(dir.path.string(), 1h);
    StoredResponse old = row("resp_old");
    old.created_at -= 2 * 3600;  // expired an hour ago
    s->put(old);
    EXPECT_FALSE(s->get("resp_old", "me"));  // queued or written: expired either way
}

TEST(ResponseStore, MemoryKeepsTheNewestRows) {
    auto s = open_response_store("", 1h, 2);
    for (const char* id : {"resp_1", "resp_2", "resp_3"}) s->put(row(id));
    for (int i = 0; i < 200 && s->get("resp_1", "me"); ++i) std::this_thread::sleep_for(5ms);
    EXPECT_FALSE(s->get("resp_1", "me"));
    EXPECT_TRUE(s->get("resp_2", "me"));
    EXPECT_TRUE(s->get("resp_3", "me"));
}

}  // namespace

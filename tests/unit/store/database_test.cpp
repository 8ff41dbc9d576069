#include "store/database.hpp"
#include "store/migrations.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace tailgate::store;

namespace {

const Migration kV1[] = {{1, "t", "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION)"}};
const Migration kV2[] = {{1, "t", "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION)"},
                         {2, "u", "CREATE TABLE u (id TEXT)"}};

}  // namespace

TEST(Database, MigrationsRunOnceInOrderAndRefuseANewerSchema) {
    auto db = open("sqlite://:memory:");
    EXPECT_EQ(db->run([](Connection& c) { return migrate(c, "demo", kV1); }), 1);
    EXPECT_EQ(db->run([](Connection& c) { return migrate(c, "demo", kV1); }), 0);
    EXPECT_EQ(db->run([](Connection& c) { return migrate(c, "demo", kV2); }), 1);
    EXPECT_EQ(db->run([](Connection& c) { return applied_versions(c, "demo"); }), (std::vector<int>{1, 2}));
    // Another component's versions are its own.
    EXPECT_EQ(db->run([](Connection& c) { return applied_versions(c, "other"); }), std::vector<int>{});
    // A binary that knows only version 1 refuses a database at version 2.
    EXPECT_THROW(db->run([](Connection& c) { return migrate(c, "demo", kV1); }), DbError);
}

TEST(Database, ValuesRoundTripWithTheirTypes) {
    auto db = open("sqlite://:memory:");
    auto rows = db->run([](Connection& c) {
        migrate(c, "demo", kV1);
        c.exec("INSERT INTO t (id, n, x) VALUES (?, ?, ?)", {std::string("a"), int64_t{42}, 0.25});
        c.exec("INSERT INTO t (id, n, x) VALUES (?, ?, ?)", {std::string("b"), Value(), Value()});
        return c.query("SELECT id, n, x FROM t ORDER BY id");
    });
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].text(0), "a");
    EXPECT_EQ(rows[0].i64(1), 42);
    EXPECT_DOUBLE_EQ(rows[0].f64(2), 0.25);
    EXPECT_TRUE(rows[1].null(1));
    EXPECT_EQ(rows[1].i64(1, -7), -7);
}

TEST(Database, TransactionRollsBackWhenItThrowsAndDuplicatesAreNamed) {
    auto db = open("sqlite://:memory:");
    db->run([](Connection& c) { migrate(c, "demo", kV1); });
    EXPECT_THROW(db->run([](Connection& c) {
        c.transaction([&] {
            c.exec("INSERT INTO t (id) VALUES (?)", {std::string("a")});
            throw std::runtime_error("no");
        });
    }),
                 std::runtime_error);
    EXPECT_EQ(db->run([](Connection& c) { return c.query("SELECT COUNT(*) FROM t")[0].i64(0); }), 0);
    db->run([](Connection& c) { c.exec("INSERT INTO t (id) VALUES (?)", {std::string("a")}); });
    try {
        db->run([](Connection& c) { c.exec("INSERT INTO t (id) VALUES (?)", {std::string("a")}); });
        FAIL() << "a duplicate primary key was accepted";
    } catch (const DbError& e) {
        EXPECT_TRUE(e.duplicate);
        EXPECT_FALSE(e.connection_lost());
    }
    EXPECT_TRUE(db->available());  // a refused statement is not an outage
}

TEST(Database, FileDatabaseIsSharedByThePoolAndCountsStatements) {
    const auto dir = std::filesystem::temp_directory_path() / ("tg-db-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    {
        auto db = open("sqlite://" + (dir / "sub" / "x.db").string(), Options{3});
        db->run([](Connection& c) { migrate(c, "demo", kV1); });
        const uint64_t before = db->statements();
        std::vector<std::future<void>> writes;
        for (int i = 0; i < 20; ++i)
            writes.push_back(db->submit([i](Connection& c) {
                c.exec("INSERT INTO t (id, n) VALUES (?, ?)", {std::to_string(i), int64_t{i}});
            }));
        for (auto& w : writes) w.get();
        EXPECT_EQ(db->run([](Connection& c) { return c.query("SELECT SUM(n) FROM t")[0].i64(0); }), 190);
        EXPECT_EQ(db->statements() - before, 21u);
    }
    EXPECT_EQ(std::filesystem::status(dir / "sub" / "x.db").permissions() & std::filesystem::perms::others_read,
              std::filesystem::perms::none);
    std::filesystem::remove_all(dir);
}

TEST(Database, AnUnreachableServerFailsTheJobAndMarksTheDatabaseUnavailable) {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    auto db = open("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2");
    EXPECT_EQ(db->where(), "postgresql://nobody:***@127.0.0.1:1/none?connect_timeout=2");
    EXPECT_THROW(db->run([](Connection& c) { c.query("SELECT 1"); }), DbError);
    EXPECT_FALSE(db->available());
    EXPECT_EQ(db->last_error().find("secret"), std::string::npos);
}

TEST(Database, UrlsAreCheckedAndPasswordsNeverShown) {
    EXPECT_EQ(parse_url("sqlite:///var/lib/t.db").sqlite_path, "/var/lib/t.db");
    EXPECT_EQ(parse_url("sqlite://rel/t.db").sqlite_path, "rel/t.db");
    EXPECT_EQ(parse_url("postgres://u:pw@h:5/d").backend, Backend::Postgres);
    EXPECT_EQ(parse_url("postgresql://u:pw@h/d?password=pw2&sslmode=disable").shown,
              "postgresql://u:***@h/d?password=***&sslmode=disable");
    EXPECT_THROW(parse_url("mysql://u:pw@h/d"), std::invalid_argument);
    EXPECT_THROW(parse_url("sqlite://"), std::invalid_argument);
}

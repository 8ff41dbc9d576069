#include "control/store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>

namespace tailgate::control {

namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS revisions ("
    " revision INTEGER PRIMARY KEY,"  // the order every replica applies them in
    " at_ms INTEGER NOT NULL,"
    " origin TEXT NOT NULL,"
    " key_hash TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " payload TEXT NOT NULL);";

struct Db {
    sqlite3* db = nullptr;
    ~Db() { sqlite3_close(db); }
};

struct Stmt {
    sqlite3_stmt* s = nullptr;
    ~Stmt() { sqlite3_finalize(s); }
};

class SqliteStore final : public Store {
public:
    explicit SqliteStore(std::string path) : path_(std::move(path)) {
        const mode_t old = ::umask(077);  // the log may hold deployment api keys
        const int rc = sqlite3_open_v2(path_.c_str(), &db_.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
        ::umask(old);
        if (rc != SQLITE_OK) fail("open");
        exec("PRAGMA journal_mode=WAL;");
        // The stored responses (response_store.cpp) write to the same file from their own
        // connection: wait for their transaction rather than fail an admin change.
        sqlite3_busy_timeout(db_.db, 5000);
        exec(kSchema);
    }

    std::vector<Change> load() override {
        Stmt st;
        prepare("SELECT revision, at_ms, origin, key_hash, op, target, payload FROM revisions ORDER BY revision", st);
        std::vector<Change> out;
        while (sqlite3_step(st.s) == SQLITE_ROW) {
            Change c;
            c.revision = static_cast<uint64_t>(sqlite3_column_int64(st.s, 0));
            c.at_ms = sqlite3_column_int64(st.s, 1);
            c.origin = text(st.s, 2);
            c.key_hash = text(st.s, 3);
            c.op = text(st.s, 4);
            c.target = text(st.s, 5);
            c.payload = text(st.s, 6);
            out.push_back(std::move(c));
        }
        return out;
    }

    void append(const Change& c) override {
        Stmt st;
        prepare("INSERT INTO revisions (revision, at_ms, origin, key_hash, op, target, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                st);
        sqlite3_bind_int64(st.s, 1, static_cast<sqlite3_int64>(c.revision));
        sqlite3_bind_int64(st.s, 2, c.at_ms);
        bind(st.s, 3, c.origin);
        bind(st.s, 4, c.key_hash);
        bind(st.s, 5, c.op);
        bind(st.s, 6, c.target);
        bind(st.s, 7, c.payload);
        if (sqlite3_step(st.s) != SQLITE_DONE) fail("insert revision " + std::to_string(c.revision));
    }

    std::string where() const override { return path_; }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("state store " + path_ + ": " + what + ": " +
                                 (db_.db ? sqlite3_errmsg(db_.db) : "out of memory"));
    }
    void exec(const char* sql) {
        if (sqlite3_exec(db_.db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail("schema");
    }
    void prepare(const char* sql, Stmt& st) {
        if (sqlite3_prepare_v2(db_.db, sql, -1, &st.s, nullptr) != SQLITE_OK) fail("prepare");
    }
    static void bind(sqlite3_stmt* s, int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    static std::string text(sqlite3_stmt* s, int i) {
        const auto* p = sqlite3_column_text(s, i);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, i)))
                 : std::string();
    }

    std::string path_;
    Db db_;
};

class MemoryStore final : public Store {
public:
    std::vector<Change> load() override { return log_; }
    void append(const Change& c) override { log_.push_back(c); }
    std::string where() const override { return "memory (no state_dir: changes are lost at exit)"; }

private:
    std::vector<Change> log_;
};

}  // namespace

StorePtr open_sqlite_store(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("state_dir " + dir + ": " + ec.message());
    return std::make_unique<SqliteStore>((std::filesystem::path(dir) / "tailgate-state.db").string());
}

StorePtr memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace tailgate::control

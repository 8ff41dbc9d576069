// The SQLite backend: one sqlite3 handle per pool thread, WAL journal (readers
// do not wait for the writer), a busy timeout instead of SQLITE_BUSY, and the
// connection's prepared statements kept for reuse.
#include "store/database.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <unordered_map>

namespace tailgate::store {

namespace {

constexpr int kBusyTimeoutMs = 10000;
constexpr size_t kMaxCached = 256;

class SqliteConnection final : public Connection {
public:
    SqliteConnection(const std::string& path, std::atomic<uint64_t>& counter) : path_(path), counter_(counter) {
        if (path != ":memory:") {
            std::error_code ec;
            const auto dir = std::filesystem::path(path).parent_path();
            if (!dir.empty()) std::filesystem::create_directories(dir, ec);
        }
        const mode_t old = ::umask(077);  // spend and key hashes are nobody else's business
        const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                       nullptr);
        ::umask(old);
        if (rc != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            throw DbError("sqlite " + path + ": open: " + msg, true);
        }
        sqlite3_busy_timeout(db_, kBusyTimeoutMs);
        // Not counted as statements: connection set-up, not work.
        if (sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
            const std::string msg = sqlite3_errmsg(db_);
            sqlite3_close(db_);
            db_ = nullptr;
            throw DbError("sqlite " + path + ": " + msg, true);
        }
    }
    ~SqliteConnection() override {
        clear_cache();
        sqlite3_close(db_);
    }

    Rows query(std::string_view sql, const Params& params) override {
        sqlite3_stmt* st = prepare(sql, params);
        Rows rows;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) rows.push_back(row(st));
        finish(st, rc, sql);
        return rows;
    }

    int64_t exec(std::string_view sql, const Params& params) override {
        sqlite3_stmt* st = prepare(sql, params);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        }
        finish(st, rc, sql);
        return sqlite3_changes(db_);
    }

    void script(std::string_view sql) override {
        counter_.fetch_add(1, std::memory_order_relaxed);
        char* err = nullptr;
        const std::string text(sql);
        if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
            const std::string msg = err ? err : sqlite3_errmsg(db_);
            sqlite3_free(err);
            throw DbError("sqlite " + path_ + ": " + msg);
        }
    }

    Backend backend() const override { return Backend::Sqlite; }
    void begin() override { exec("BEGIN IMMEDIATE", {}); }

private:
    sqlite3_stmt* prepare(std::string_view sql, const Params& params) {
        counter_.fetch_add(1, std::memory_order_relaxed);
        std::string key(sql);
        auto it = cache_.find(key);
        sqlite3_stmt* st = nullptr;
        if (it != cache_.end()) {
            st = it->second;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        } else {
            if (cache_.size() >= kMaxCached) clear_cache();  // statements built from varying filters
            if (sqlite3_prepare_v2(db_, key.c_str(), static_cast<int>(key.size()), &st, nullptr) != SQLITE_OK)
                throw DbError("sqlite " + path_ + ": " + sqlite3_errmsg(db_) + " in: " + key.substr(0, 120));
            cache_.emplace(std::move(key), st);
        }
        for (size_t i = 0; i < params.size(); ++i) bind(st, static_cast<int>(i + 1), params[i]);
        return st;
    }

    static void bind(sqlite3_stmt* st, int i, const Value& v) {
        if (auto* n = std::get_if<int64_t>(&v)) sqlite3_bind_int64(st, i, *n);
        else if (auto* d = std::get_if<double>(&v)) sqlite3_bind_double(st, i, *d);
        else if (auto* s = std::get_if<std::string>(&v))
            sqlite3_bind_text(st, i, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
        else sqlite3_bind_null(st, i);
    }

    static Row row(sqlite3_stmt* st) {
        Row r;
        const int n = sqlite3_column_count(st);
        r.cols.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
            switch (sqlite3_column_type(st, i)) {
                case SQLITE_INTEGER: r.cols.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, i))); break;
                case SQLITE_FLOAT: r.cols.emplace_back(sqlite3_column_double(st, i)); break;
                case SQLITE_NULL: r.cols.emplace_back(std::monostate{}); break;
                default: {
                    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
                    r.cols.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, i))));
                }
            }
        }
        return r;
    }

    void finish(sqlite3_stmt* st, int rc, std::string_view sql) {
        if (rc == SQLITE_DONE) {
            sqlite3_reset(st);
            return;
        }
        const int ext = sqlite3_extended_errcode(db_);
        DbError e("sqlite " + path_ + ": " + sqlite3_errmsg(db_) + " in: " + std::string(sql.substr(0, 120)),
                  rc == SQLITE_IOERR || rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_CANTOPEN);
        e.duplicate = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY;
        sqlite3_reset(st);
        throw e;
    }

    void clear_cache() {
        for (auto& [sql, st] : cache_) sqlite3_finalize(st);
        cache_.clear();
    }

    std::string path_;
    std::atomic<uint64_t>& counter_;
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace

Connect sqlite_connector(const std::string& path) {
    return [path](std::atomic<uint64_t>& counter) -> ConnectionPtr {
        return std::make_unique<SqliteConnection>(path, counter);
    };
}

}  // namespace tailgate::store

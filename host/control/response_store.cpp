#include "control/response_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace tailgate::control {

namespace {

int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Where rows live. insert/erase/purge run on the store's writer thread only;
// find on any thread.
class Backend {
public:
    virtual ~Backend() = default;
    virtual void insert(const StoredResponse& r, int64_t expires_at) = 0;
    virtual void erase(const std::string& id) = 0;
    virtual void purge(int64_t now) = 0;
    virtual std::optional<StoredResponse> find(std::string_view id, int64_t now) = 0;
    virtual std::string where() const = 0;
    // A batch of writes in one transaction (one sync instead of one a row).
    virtual void begin() {}
    virtual void commit() {}
};

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS responses ("
    " id TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " previous_id TEXT NOT NULL,"
    " input_items TEXT NOT NULL,"
    " output TEXT NOT NULL,"
    " response TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);";

class SqliteBackend final : public Backend {
public:
    explicit SqliteBackend(std::string path) : path_(std::move(path)) {
        const mode_t old = ::umask(077);  // prompts and answers: the owner's only
        const int rc = sqlite3_open_v2(path_.c_str(), &db_,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
        ::umask(old);
        if (rc != SQLITE_OK) fail("open");
        sqlite3_busy_timeout(db_, 5000);  // the revision log writes to the same file
        exec("PRAGMA journal_mode=WAL;");
        // WAL + NORMAL: a crash loses at most the last batches, never the file's integrity.
        exec("PRAGMA synchronous=NORMAL;");
        exec(kSchema);
    }
    void begin() override { exec("BEGIN IMMEDIATE;"); }
    void commit() override { exec("COMMIT;"); }
    ~SqliteBackend() override { sqlite3_close(db_); }

    void insert(const StoredResponse& r, int64_t expires_at) override {
        Stmt st(db_, "INSERT OR REPLACE INTO responses (id, owner, created_at, expires_at, previous_id, input_items, "
                     "output, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        st.text(1, r.id).text(2, r.owner).integer(3, r.created_at).integer(4, expires_at);
        st.text(5, r.previous_id).text(6, r.input_items).text(7, r.output).text(8, r.response);
        st.done();
    }
    void erase(const std::string& id) override {
        Stmt st(db_, "DELETE FROM responses WHERE id = ?");
        st.text(1, id).done();
    }
    void purge(int64_t now) override {
        Stmt st(db_, "DELETE FROM responses WHERE expires_at < ?");
        st.integer(1, now).done();
    }
    std::optional<StoredResponse> find(std::string_view id, int64_t now) override {
        Stmt st(db_, "SELECT owner, created_at, previous_id, input_items, output, response FROM responses "
                     "WHERE id = ? AND expires_at >= ?");
        st.text(1, id).integer(2, now);
        if (sqlite3_step(st.s) != SQLITE_ROW) return std::nullopt;
        StoredResponse r;
        r.id = id;
        r.owner = column(st.s, 0);
        r.created_at = sqlite3_column_int64(st.s, 1);
        r.previous_id = column(st.s, 2);
        r.input_items = column(st.s, 3);
        r.output = column(st.s, 4);
        r.response = column(st.s, 5);
        return r;
    }
    std::string where() const override { return path_ + " (table responses)"; }

private:
    struct Stmt {
        sqlite3_stmt* s = nullptr;
        Stmt(sqlite3* db, const char* sql) {
            if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
                throw std::runtime_error(std::string("response store: ") + sqlite3_errmsg(db));
        }
        ~Stmt() { sqlite3_finalize(s); }
        Stmt& text(int i, std::string_view v) {
            sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
            return *this;
        }
        Stmt& integer(int i, int64_t v) {
            sqlite3_bind_int64(s, i, v);
            return *this;
        }
        void done() {
            if (sqlite3_step(s) != SQLITE_DONE)
                throw std::runtime_error(std::string("response store: ") + sqlite3_errmsg(sqlite3_db_handle(s)));
        }
    };
    static std::string column(sqlite3_stmt* s, int i) {
        const auto* p = sqlite3_column_text(s, i);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, i)))
                 : std::string();
    }
    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("response store " + path_ + ": " + what + ": " +
                                 (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    }

    std::string path_;
    sqlite3* db_ = nullptr;
};

class MemoryBackend final : public Backend {
public:
    explicit MemoryBackend(size_t cap) : cap_(std::max<size_t>(cap, 1)) {}
    void insert(const StoredResponse& r, int64_t expires_at) override {
        std::lock_guard lk(mu_);
        if (rows_.insert_or_assign(r.id, Row{r, expires_at}).second) order_.push_back(r.id);
        while (rows_.size() > cap_ && !order_.empty()) {  // the oldest go first
            rows_.erase(order_.front());
            order_.pop_front();
        }
    }
    void erase(const std::string& id) override {
        std::lock_guard lk(mu_);
        rows_.erase(id);  // its id leaves `order_` when it comes up (erase of a missing key is a no-op)
    }
    void purge(int64_t now) override {
        std::lock_guard lk(mu_);
        std::erase_if(rows_, [&](const auto& kv) { return kv.second.expires_at < now; });
        std::erase_if(order_, [&](const std::string& id) { return !rows_.count(id); });
    }
    std::optional<StoredResponse> find(std::string_view id, int64_t now) override {
        std::lock_guard lk(mu_);
        auto it = rows_.find(std::string(id));
        if (it == rows_.end() || it->second.expires_at < now) return std::nullopt;
        return it->second.r;
    }
    std::string where() const override {
        return "memory (no state_dir: lost at exit, at most " + std::to_string(cap_) + " kept)";
    }

private:
    struct Row {
        StoredResponse r;
        int64_t expires_at;
    };
    std::mutex mu_;
    size_t cap_;
    std::unordered_map<std::string, Row> rows_;
    std::deque<std::string> order_;
};

class Store final : public ResponseStore {
public:
    Store(std::unique_ptr<Backend> backend, std::chrono::milliseconds retention)
        : backend_(std::move(backend)),
          retention_s_(std::chrono::duration_cast<std::chrono::seconds>(retention).count()),
          writer_([this] { write_loop(); }) {}
    ~Store() override {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_one();
        writer_.join();
    }

    void put(StoredResponse r) override {
        if (retention_s_ <= 0) return;
        std::lock_guard lk(mu_);
        const std::string id = r.id;
        removed_.erase(id);
        pending_.insert_or_assign(id, std::move(r));
        ops_.push_back(Op{true, id});
        cv_.notify_one();
    }

    std::optional<StoredResponse> get(std::string_view id, std::string_view owner) override {
        std::optional<StoredResponse> r;
        {
            std::lock_guard lk(mu_);
            const std::string key(id);
            if (removed_.count(key)) return std::nullopt;
            if (auto it = pending_.find(key); it != pending_.end() && it->second.created_at + retention_s_ >= now_s())
                r = it->second;
        }
        if (!r) r = backend_->find(id, now_s());
        if (r && r->owner != owner) return std::nullopt;  // someone else's: as if absent
        return r;
    }

    bool remove(std::string_view id, std::string_view owner) override {
        if (!get(id, owner)) return false;
        std::lock_guard lk(mu_);
        const std::string key(id);
        pending_.erase(key);
        removed_.insert(key);
        ops_.push_back(Op{false, key});
        cv_.notify_one();
        return true;
    }

    std::vector<StoredResponse> chain(std::string_view id, std::string_view owner, size_t max_turns) override {
        std::vector<StoredResponse> turns;
        std::string cur(id);
        while (!cur.empty() && turns.size() < max_turns) {
            auto r = get(cur, owner);
            if (!r) break;  // an older turn expired: the conversation starts after it
            cur = r->previous_id;
            turns.push_back(std::move(*r));
        }
        std::reverse(turns.begin(), turns.end());
        return turns;
    }

    std::string where() const override { return backend_->where(); }

private:
    struct Op {
        bool insert;  // else delete
        std::string id;
    };

    void write_loop() {
        std::unique_lock lk(mu_);
        auto next_purge = std::chrono::steady_clock::now();
        while (true) {
            cv_.wait_until(lk, next_purge, [&] { return stop_ || !ops_.empty(); });
            if (ops_.empty() && stop_) return;
            if (std::chrono::steady_clock::now() >= next_purge) {
                lk.unlock();
                guarded([&] { backend_->purge(now_s()); });
                lk.lock();
                next_purge = std::chrono::steady_clock::now() + std::chrono::minutes(1);
            }
            if (ops_.empty()) continue;
            lk.unlock();
            guarded([&] { backend_->begin(); });
            lk.lock();
            // Up to a batch at a time: reads wait for the lock only between rows.
            for (size_t n = 0; n < kBatch && !ops_.empty(); ++n) apply_locked(lk);
            lk.unlock();
            guarded([&] { backend_->commit(); });
            lk.lock();
            settle_locked();
        }
    }

    // One queued op, written with the lock released.
    void apply_locked(std::unique_lock<std::mutex>& lk) {
        Op op = std::move(ops_.front());
        ops_.pop_front();
        if (op.insert) {
            auto it = pending_.find(op.id);
            if (it == pending_.end()) return;  // deleted (or replaced and written) meanwhile
            StoredResponse row = it->second;
            lk.unlock();
            guarded([&] { backend_->insert(row, row.created_at + retention_s_); });
            lk.lock();
            written_.push_back(std::move(row));
        } else {
            lk.unlock();
            guarded([&] { backend_->erase(op.id); });
            lk.lock();
            erased_.push_back(std::move(op.id));
        }
    }

    // After a batch's commit: its rows are readable from the backend now.
    void settle_locked() {
        for (const StoredResponse& row : written_) {
            // Keep it pending when a newer put replaced it meanwhile: its own op follows.
            if (auto again = pending_.find(row.id); again != pending_.end() && again->second.response == row.response)
                pending_.erase(again);
        }
        for (const std::string& id : erased_) removed_.erase(id);
        written_.clear();
        erased_.clear();
    }

    template <class F>
    void guarded(F&& f) {
        try {
            f();
        } catch (const std::exception&) {
            ++failures_;  // a full disk must not take the writer down; reads still see pending rows
        }
    }

    std::unique_ptr<Backend> backend_;
    const int64_t retention_s_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Op> ops_;
    std::unordered_map<std::string, StoredResponse> pending_;  // queued, not yet written
    std::unordered_set<std::string> removed_;                  // deleted, not yet erased from the backend
    std::vector<StoredResponse> written_;  // the batch in progress (pending until its commit)
    std::vector<std::string> erased_;
    static constexpr size_t kBatch = 256;
    bool stop_ = false;
    uint64_t failures_ = 0;
    std::thread writer_;  // last: starts once everything above exists
};

}  // namespace

ResponseStorePtr open_response_store(const std::string& dir, std::chrono::milliseconds retention, size_t memory_rows) {
    if (dir.empty()) return std::make_shared<Store>(std::make_unique<MemoryBackend>(memory_rows), retention);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("state_dir " + dir + ": " + ec.message());
    const std::string path = (std::filesystem::path(dir) / "tailgate-state.db").string();
    return std::make_shared<Store>(std::make_unique<SqliteBackend>(path), retention);
}

}  // namespace tailgate::control

// The gateway's database: one interface over SQLite (embedded, the default) and
// PostgreSQL (a server shared by a fleet), chosen by general_settings.database_url.
//
// Connections are used only on the pool's own threads, never on an Asio or a
// front-end thread: callers submit() a function of a Connection and get a
// future (blocking threads: admin handlers, start-up) or post a job and are
// done (the spend writer, the key cache's loader). Statements are written once,
// with '?' placeholders and portable types (TEXT, BIGINT, DOUBLE PRECISION);
// the PostgreSQL backend numbers the placeholders itself.
//
// Components own their tables and their schema versions (store/migrations.hpp):
// keys and spend (host/keys) today; the revision log and stored responses can
// move here with a migration list of their own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

namespace tailgate::store {

enum class Backend { Sqlite, Postgres };

// A statement parameter or a column value. NULL is std::monostate.
using Value = std::variant<std::monostate, int64_t, double, std::string>;
using Params = std::vector<Value>;

struct Row {
    std::vector<Value> cols;
    bool null(size_t i) const { return i >= cols.size() || std::holds_alternative<std::monostate>(cols[i]); }
    int64_t i64(size_t i, int64_t fallback = 0) const;
    double f64(size_t i, double fallback = 0) const;
    std::string text(size_t i) const;  // "" for NULL
};
using Rows = std::vector<Row>;

// Any database failure. `connection_lost`: the connection is unusable (server
// gone, network) and is reopened for the next job; otherwise the statement
// itself failed (constraint, syntax).
class DbError : public std::runtime_error {
public:
    DbError(const std::string& what, bool connection_lost = false)
        : std::runtime_error(what), connection_lost_(connection_lost) {}
    bool connection_lost() const { return connection_lost_; }
    // A unique or primary key constraint refused the row.
    bool duplicate = false;

private:
    bool connection_lost_;
};

// One connection, used by one thread at a time.
class Connection {
public:
    virtual ~Connection() = default;
    virtual Rows query(std::string_view sql, const Params& params = {}) = 0;
    // Returns the number of rows changed.
    virtual int64_t exec(std::string_view sql, const Params& params = {}) = 0;
    // Several statements separated by ';', without parameters (migrations).
    virtual void script(std::string_view sql) = 0;
    virtual Backend backend() const = 0;
    // BEGIN that takes the write lock at once (SQLite: IMMEDIATE), COMMIT, ROLLBACK.
    virtual void begin() = 0;
    void commit() { exec("COMMIT"); }
    void rollback() noexcept;

    // fn() inside one transaction: committed when it returns, rolled back when it throws.
    template <class F>
    auto transaction(F&& fn) -> std::invoke_result_t<F> {
        begin();
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
                fn();
                commit();
            } else {
                auto r = fn();
                commit();
                return r;
            }
        } catch (...) {
            rollback();
            throw;
        }
    }
};
using ConnectionPtr = std::unique_ptr<Connection>;
// Opens a connection that counts its statements into `counter`. Throws DbError.
using Connect = std::function<ConnectionPtr(std::atomic<uint64_t>& counter)>;

// Where a database_url points, parsed.
struct Url {
    Backend backend = Backend::Sqlite;
    std::string sqlite_path;  // ":memory:" for an in-process database
    std::string conninfo;     // PostgreSQL: the URL as libpq takes it
    std::string shown;        // for logs and /health: the URL without its password
};
// "sqlite:///abs/path", "sqlite://relative/path", "sqlite://:memory:",
// "postgresql://user:pw@host:port/db?sslmode=..." (also "postgres://").
// Throws std::invalid_argument naming what is wrong (never echoing a password).
Url parse_url(const std::string& url);

class Database;
using DatabasePtr = std::shared_ptr<Database>;

struct Options {
    int pool_size = 2;  // connections, each with its own thread
};

// The pool: N threads, each owning one connection (opened lazily, reopened
// after it was lost), taking jobs from one queue in order.
class Database {
public:
    Database(Url url, Connect connect, int pool_size);
    ~Database();  // runs the queued jobs, then joins the threads
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Runs fn(Connection&) on a pool thread. The future holds its result or its
    // exception (a DbError when no connection could be opened).
    template <class F>
    auto submit(F fn) -> std::future<std::invoke_result_t<F, Connection&>> {
        using R = std::invoke_result_t<F, Connection&>;
        auto promise = std::make_shared<std::promise<R>>();
        auto body = std::make_shared<F>(std::move(fn));
        auto fut = promise->get_future();
        Job job;
        job.run = [promise, body](Connection& c) {
            try {
                if constexpr (std::is_void_v<R>) {
                    (*body)(c);
                    promise->set_value();
                } else {
                    promise->set_value((*body)(c));
                }
            } catch (const DbError&) {
                promise->set_exception(std::current_exception());
                throw;  // the pool looks at it too (a lost connection)
            } catch (...) {
                promise->set_exception(std::current_exception());  // the caller's business alone
            }
        };
        job.fail = [promise](std::exception_ptr e) { promise->set_exception(e); };
        enqueue(std::move(job));
        return fut;
    }
    // Blocks the calling thread (never an Asio one) until fn ran.
    template <class F>
    auto run(F fn) {
        return submit(std::move(fn)).get();
    }
    // Fire and forget; a failure is logged (once per distinct message) and
    // makes available() false when the connection was lost.
    void post(std::function<void(Connection&)> fn);

    Backend backend() const { return url_.backend; }
    const std::string& where() const { return url_.shown; }
    // False from the moment a connection was lost or could not be opened until
    // one is working again.
    bool available() const { return available_.load(std::memory_order_relaxed); }
    std::string last_error() const;
    size_t queued() const;
    // Statements executed so far (tests and the benchmark: no query per request).
    uint64_t statements() const { return statements_.load(std::memory_order_relaxed); }
    // Of them, queries (reads, Connection::query): the request path's only kind.
    uint64_t queries() const { return queries_.load(std::memory_order_relaxed); }

private:
    struct Job {
        std::function<void(Connection&)> run;     // may throw
        std::function<void(std::exception_ptr)> fail;  // no connection: why
    };
    void enqueue(Job job);
    void worker();
    bool connect(ConnectionPtr& conn, Job& job);
    void note_failure(const std::string& what, bool lost);

    Url url_;
    Connect connect_;
    std::atomic<uint64_t> statements_{0};
    std::atomic<uint64_t> queries_{0};
    std::atomic<bool> available_{true};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    std::string last_error_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// Opens the database `url` names (connections open lazily on the pool's threads;
// call migrate() to find out early whether it is reachable).
// Throws std::invalid_argument on a malformed URL.
DatabasePtr open(const std::string& url, Options opts = {});

// The backends' connection factories (sqlite.cpp, postgres.cpp).
Connect sqlite_connector(const std::string& path);
Connect postgres_connector(const std::string& conninfo);

}  // namespace tailgate::store

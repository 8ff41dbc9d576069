#include "store/database.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace tailgate::store {

int64_t Row::i64(size_t i, int64_t fallback) const {
    if (i >= cols.size()) return fallback;
    const Value& v = cols[i];
    if (auto* n = std::get_if<int64_t>(&v)) return *n;
    if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
    if (auto* s = std::get_if<std::string>(&v)) return s->empty() ? fallback : std::strtoll(s->c_str(), nullptr, 10);
    return fallback;
}

double Row::f64(size_t i, double fallback) const {
    if (i >= cols.size()) return fallback;
    const Value& v = cols[i];
    if (auto* d = std::get_if<double>(&v)) return *d;
    if (auto* n = std::get_if<int64_t>(&v)) return static_cast<double>(*n);
    if (auto* s = std::get_if<std::string>(&v)) return s->empty() ? fallback : std::strtod(s->c_str(), nullptr);
    return fallback;
}

std::string Row::text(size_t i) const {
    if (i >= cols.size()) return {};
    const Value& v = cols[i];
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    if (auto* n = std::get_if<int64_t>(&v)) return std::to_string(*n);
    if (auto* d = std::get_if<double>(&v)) return std::to_string(*d);
    return {};
}

void Connection::rollback() noexcept {
    try {
        exec("ROLLBACK");
    } catch (...) {
        // Nothing was open, or the connection is gone (and with it the transaction).
    }
}

namespace {

// "user:secret@host" -> "user:***@host" in the authority of a URL.
std::string without_password(const std::string& url) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const size_t start = scheme + 3;
    const size_t end = url.find_first_of("/?", start);
    const std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const size_t at = authority.rfind('@');
    if (at == std::string::npos) return url;
    const size_t colon = authority.find(':');
    if (colon == std::string::npos || colon > at) return url;
    std::string out = url.substr(0, start) + authority.substr(0, colon) + ":***" + authority.substr(at);
    if (end != std::string::npos) out += url.substr(end);
    // A password given as a query parameter is hidden too.
    const size_t pw = out.find("password=");
    if (pw != std::string::npos) {
        const size_t stop = out.find('&', pw);
        out.replace(pw + 9, stop == std::string::npos ? std::string::npos : stop - pw - 9, "***");
    }
    return out;
}

}  // namespace

Url parse_url(const std::string& url) {
    Url u;
    u.shown = without_password(url);
    if (url.rfind("sqlite://", 0) == 0) {
        u.backend = Backend::Sqlite;
        u.sqlite_path = url.substr(9);  // sqlite:///abs -> "/abs"; sqlite://rel -> "rel"
        if (u.sqlite_path.empty()) throw std::invalid_argument("sqlite:// URL without a path (sqlite:///path/to/file.db)");
        return u;
    }
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        u.backend = Backend::Postgres;
        u.conninfo = url;
        return u;
    }
    throw std::invalid_argument("expected sqlite:///path or postgresql://user:password@host:port/database, got '" +
                                u.shown.substr(0, 40) + "'");
}

Database::Database(Url url, Connect connect, int pool_size) : url_(std::move(url)), connect_(std::move(connect)) {
    const int n = std::max(1, pool_size);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker(); });
}

Database::~Database() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

void Database::post(std::function<void(Connection&)> fn) {
    Job job;
    job.run = std::move(fn);
    enqueue(std::move(job));
}

void Database::enqueue(Job job) {
    {
        std::lock_guard lk(mu_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

std::string Database::last_error() const {
    std::lock_guard lk(mu_);
    return last_error_;
}

size_t Database::queued() const {
    std::lock_guard lk(mu_);
    return jobs_.size();
}

void Database::note_failure(const std::string& what, bool lost) {
    if (lost) available_.store(false, std::memory_order_relaxed);
    std::lock_guard lk(mu_);
    if (what != last_error_) spdlog::warn("database {}: {}", url_.shown, what);
    last_error_ = what;
}

namespace {

// Counts the queries (reads: Connection::query) of a backend's connection;
// its statements (every kind) the backend counts itself.
class CountingConnection final : public Connection {
public:
    CountingConnection(ConnectionPtr inner, std::atomic<uint64_t>& queries)
        : inner_(std::move(inner)), queries_(queries) {}
    Rows query(std::string_view sql, const Params& params) override {
        queries_.fetch_add(1, std::memory_order_relaxed);
        return inner_->query(sql, params);
    }
    int64_t exec(std::string_view sql, const Params& params) override { return inner_->exec(sql, params); }
    void script(std::string_view sql) override { inner_->script(sql); }
    Backend backend() const override { return inner_->backend(); }
    void begin() override { inner_->begin(); }

private:
    ConnectionPtr inner_;
    std::atomic<uint64_t>& queries_;
};

}  // namespace

// Opens this thread's connection if it has none; false (and the job failed) when that fails.
bool Database::connect(ConnectionPtr& conn, Job& job) {
    if (conn) return true;
    try {
        conn = std::make_unique<CountingConnection>(connect_(statements_), queries_);
        return true;
    } catch (const std::exception& e) {
        note_failure(e.what(), true);
        if (job.fail) job.fail(std::current_exception());
        return false;
    }
}

void Database::worker() {
    ConnectionPtr conn;
    for (;;) {
        Job job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping, and every job ran
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        if (!connect(conn, job)) continue;
        try {
            job.run(*conn);
            available_.store(true, std::memory_order_relaxed);
        } catch (const DbError& e) {
            if (e.connection_lost()) conn.reset();  // reopened for the next job
            note_failure(e.what(), e.connection_lost());
        } catch (const std::exception& e) {
            note_failure(e.what(), false);
        } catch (...) {
            note_failure("unknown exception", false);
        }
    }
}

DatabasePtr open(const std::string& url_text, Options opts) {
    Url url = parse_url(url_text);
    if (url.backend == Backend::Sqlite) {
        // An in-memory database is one connection's: a second would see another database.
        const int pool = url.sqlite_path == ":memory:" ? 1 : opts.pool_size;
        return std::make_shared<Database>(url, sqlite_connector(url.sqlite_path), pool);
    }
    return std::make_shared<Database>(url, postgres_connector(url.conninfo), opts.pool_size);
}

}  // namespace tailgate::store

// The PostgreSQL backend (libpq): one server connection per pool thread.
// Statements arrive with '?' placeholders and are sent with $1..$n; parameters
// travel as text with their type given (bigint, double precision, text), and
// columns come back converted by their type.
#include "store/database.hpp"

#include <libpq-fe.h>

#include <cstdio>
#include <unordered_map>

namespace tailgate::store {

namespace {

constexpr Oid kInt8 = 20, kInt2 = 21, kInt4 = 23, kFloat4 = 700, kFloat8 = 701, kNumeric = 1700, kBool = 16,
              kText = 25;

// '?' -> $1, $2, ... outside quoted literals and identifiers.
std::string numbered(std::string_view sql) {
    std::string out;
    out.reserve(sql.size() + 16);
    int n = 0;
    char quote = 0;
    for (char c : sql) {
        if (quote) {
            if (c == quote) quote = 0;
            out += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            out += c;
        } else if (c == '?') {
            out += '$' + std::to_string(++n);
        } else {
            out += c;
        }
    }
    return out;
}

struct Result {
    PGresult* r = nullptr;
    ~Result() { PQclear(r); }
};

class PgConnection final : public Connection {
public:
    PgConnection(const std::string& conninfo, std::atomic<uint64_t>& counter) : counter_(counter) {
        // The URL is the dbname, expanded by libpq; a connect timeout unless the URL has one.
        const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
        const char* values[] = {conninfo.c_str(), "5", "tailgate", nullptr};
        conn_ = PQconnectdbParams(keys, values, 1);
        if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
            std::string msg = conn_ ? PQerrorMessage(conn_) : "out of memory";
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
            PQfinish(conn_);
            conn_ = nullptr;
            throw DbError("postgresql: connect: " + msg, true);
        }
        PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // "already exists, skipping"
    }
    ~PgConnection() override { PQfinish(conn_); }

    Rows query(std::string_view sql, const Params& params) override {
        Result res = run(sql, params);
        Rows rows;
        const int nrows = PQntuples(res.r), ncols = PQnfields(res.r);
        rows.reserve(static_cast<size_t>(nrows));
        for (int i = 0; i < nrows; ++i) {
            Row row;
            row.cols.reserve(static_cast<size_t>(ncols));
            for (int j = 0; j < ncols; ++j) row.cols.push_back(cell(res.r, i, j));
            rows.push_back(std::move(row));
        }
        return rows;
    }

    int64_t exec(std::string_view sql, const Params& params) override {
        Result res = run(sql, params);
        const char* n = PQcmdTuples(res.r);
        return n && *n ? std::strtoll(n, nullptr, 10) : 0;
    }

    void script(std::string_view sql) override {
        counter_.fetch_add(1, std::memory_order_relaxed);
        Result res{PQexec(conn_, std::string(sql).c_str())};
        check(res.r, sql);
    }

    Backend backend() const override { return Backend::Postgres; }
    void begin() override { exec("BEGIN", {}); }

private:
    Result run(std::string_view sql, const Params& params) {
        counter_.fetch_add(1, std::memory_order_relaxed);
        const std::string& text = converted(sql);
        std::vector<std::string> storage(params.size());
        std::vector<const char*> values(params.size());
        std::vector<Oid> types(params.size());
        for (size_t i = 0; i < params.size(); ++i) {
            const Value& v = params[i];
            if (auto* n = std::get_if<int64_t>(&v)) {
                storage[i] = std::to_string(*n);
                types[i] = kInt8;
            } else if (auto* d = std::get_if<double>(&v)) {
                char buf[40];
                std::snprintf(buf, sizeof buf, "%.17g", *d);
                storage[i] = buf;
                types[i] = kFloat8;
            } else if (auto* s = std::get_if<std::string>(&v)) {
                storage[i] = *s;
                types[i] = kText;
            }
            values[i] = std::holds_alternative<std::monostate>(v) ? nullptr : storage[i].c_str();
        }
        Result res{PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), types.data(), values.data(),
                                nullptr, nullptr, 0)};
        check(res.r, sql);
        return res;
    }

    const std::string& converted(std::string_view sql) {
        std::string key(sql);
        auto it = sql_.find(key);
        if (it != sql_.end()) return it->second;
        if (sql_.size() >= 512) sql_.clear();
        return sql_.emplace(key, numbered(sql)).first->second;
    }

    void check(PGresult* r, std::string_view sql) {
        const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return;
        std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        const bool lost = PQstatus(conn_) != CONNECTION_OK;
        DbError e("postgresql: " + msg + (lost ? "" : " in: " + std::string(sql.substr(0, 120))), lost);
        const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        e.duplicate = state && std::string_view(state) == "23505";
        throw e;
    }

    static Value cell(PGresult* r, int i, int j) {
        if (PQgetisnull(r, i, j)) return std::monostate{};
        const char* v = PQgetvalue(r, i, j);
        switch (PQftype(r, j)) {
            case kInt8:
            case kInt4:
            case kInt2: return static_cast<int64_t>(std::strtoll(v, nullptr, 10));
            case kFloat4:
            case kFloat8:
            case kNumeric: return std::strtod(v, nullptr);
            case kBool: return static_cast<int64_t>(v[0] == 't');
            default: return std::string(v, static_cast<size_t>(PQgetlength(r, i, j)));
        }
    }

    std::atomic<uint64_t>& counter_;
    PGconn* conn_ = nullptr;
    std::unordered_map<std::string, std::string> sql_;
};

}  // namespace

Connect postgres_connector(const std::string& conninfo) {
    return [conninfo](std::atomic<uint64_t>& counter) -> ConnectionPtr {
        return std::make_unique<PgConnection>(conninfo, counter);
    };
}

}  // namespace tailgate::store

// tailgate-loadgen: an open-loop HTTP load generator for OpenAI chat completions.
//
// Requests are scheduled at fixed instants (rate R: request i at start + i/R) and
// every latency is measured from the scheduled instant, not from the moment a
// connection was free, so a slow target shows its queueing instead of hiding it
// (no coordinated omission). Connections are kept alive and the pool grows when
// every connection is busy, up to --concurrency-cap; beyond that requests wait in
// a queue, their clock already running. One io thread drives everything; its own
// lag behind the schedule is reported so a saturated generator is visible.
//
// For streams (--stream) the SSE body is scanned event by event: TTFT is the first
// event carrying non-empty `content`, and the gaps between content events are kept.
// --streams N --ramp D opens N streams spread over D and waits for them all: the
// "many concurrent long streams" mode.
//
// Output: one JSON document (summary + per-request arrays) to --out or stdout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr const char* kUsage = R"(usage: tailgate-loadgen --url http://127.0.0.1:PORT/v1/chat/completions [options]
 open loop
  --rate R                  requests per second (fixed spacing)          [100]
  --duration D              measured time (10s, 500ms; bare = seconds)   [10s]
  --warmup D                sent first, not recorded                     [0]
 long streams
  --streams N               open N requests spread over --ramp, then wait for all
  --ramp D                  [1s]
 request
  --stream                  "stream": true; measure TTFT and inter-chunk gaps
  --model NAME              [m]
  --body JSON               request body (overrides --model/--stream body; --stream still parses SSE)
  --header 'K: V'           extra header (repeatable)
  --keys-file FILE          one API key a line: request i sends "Authorization: Bearer <key i mod N>"
 limits
  --concurrency-cap N       most connections open at once                [4096]
  --timeout D               per request, from its scheduled time         [30s]
 output
  --out FILE                JSON result (default stdout)
  --label NAME              copied into the result
  --quiet                   no summary line on stderr
)";

// ---------------------------------------------------------------- options

struct Options {
    std::string url, host = "127.0.0.1", port = "80", path = "/";
    double rate = 100, duration_s = 10, warmup_s = 0, timeout_s = 30, ramp_s = 1;
    long streams = 0;
    bool stream = false, quiet = false;
    std::string model = "m", body, out, label;
    std::vector<std::string> headers;
    std::string keys_file;
    long cap = 4096;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "tailgate-loadgen: " << msg << "\n" << kUsage;
    std::exit(2);
}

double parse_seconds(const std::string& s) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    std::string unit(end);
    if (end == s.c_str() || v < 0) usage_error("bad duration '" + s + "'");
    if (unit.empty() || unit == "s") return v;
    if (unit == "ms") return v / 1e3;
    if (unit == "us") return v / 1e6;
    if (unit == "m") return v * 60;
    usage_error("bad duration unit in '" + s + "'");
}

double parse_number(const std::string& s) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end || v < 0) usage_error("bad number '" + s + "'");
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i], v;
        if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            std::exit(0);
        }
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else if (a != "--stream" && a != "--quiet" && a != "--hold") {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            v = argv[++i];
        }
        if (a == "--url") o.url = v;
        else if (a == "--rate") o.rate = parse_number(v);
        else if (a == "--duration") o.duration_s = parse_seconds(v);
        else if (a == "--warmup") o.warmup_s = parse_seconds(v);
        else if (a == "--timeout") o.timeout_s = parse_seconds(v);
        else if (a == "--streams") o.streams = static_cast<long>(parse_number(v));
        else if (a == "--ramp") o.ramp_s = parse_seconds(v);
        else if (a == "--hold") {}  // accepted for readability: --streams always holds until done
        else if (a == "--stream") o.stream = true;
        else if (a == "--quiet") o.quiet = true;
        else if (a == "--model") o.model = v;
        else if (a == "--body") o.body = v;
        else if (a == "--header") o.headers.push_back(v);
        else if (a == "--keys-file") o.keys_file = v;
        else if (a == "--concurrency-cap") o.cap = static_cast<long>(parse_number(v));
        else if (a == "--out") o.out = v;
        else if (a == "--label") o.label = v;
        else usage_error("unknown option " + a);
    }
    constexpr std::string_view scheme = "http://";
    if (o.url.rfind(scheme, 0) != 0) usage_error("--url must start with http://");
    std::string rest = o.url.substr(scheme.size());
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    o.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
        o.host = hostport.substr(0, colon);
        o.port = hostport.substr(colon + 1);
    } else {
        o.host = hostport;
    }
    if (o.streams > 0) {  // N streams over the ramp: the same scheduler, nothing recorded as warm-up
        if (o.ramp_s <= 0) usage_error("--ramp must be > 0");
        o.rate = static_cast<double>(o.streams) / o.ramp_s;
        o.duration_s = o.ramp_s;
        o.warmup_s = 0;
        o.cap = std::max(o.cap, o.streams);
    }
    if (o.rate <= 0 || o.cap < 1) usage_error("--rate and --concurrency-cap must be positive");
    return o;
}

// ---------------------------------------------------------------- results

enum Err : int { kOk = 0, kHttp = 1, kTransport = 2, kTimeout = 3, kUnfinished = 4, kStream = 5 };
constexpr const char* kErrName[] = {"ok", "http_status", "transport", "timeout", "unfinished", "stream"};

struct Sample {
    double t_ms = 0;        // scheduled time, from the start of measurement
    double lat_ms = -1;     // scheduled time -> response complete
    double ttft_ms = -1;    // scheduled time -> first content event (streams)
    double lag_ms = -1;     // scheduled time -> request bytes handed to the socket
    int status = 0;
    int err = kUnfinished;
};

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Dist {
    std::vector<double> v;
    void add(double x) { v.push_back(x); }
    // Nearest-rank quantile of the sorted values.
    static double q(const std::vector<double>& s, double p) {
        if (s.empty()) return NAN;
        auto k = static_cast<size_t>(std::ceil(p * static_cast<double>(s.size())));
        return s[std::min(s.size() - 1, k == 0 ? 0 : k - 1)];
    }
};

void put_num(std::ostream& os, double x) {
    if (!std::isfinite(x)) {
        os << "null";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", x);
    os << buf;
}

void put_dist(std::ostream& os, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    os << "{\"n\":" << v.size() << ",\"mean\":";
    put_num(os, v.empty() ? NAN : sum / static_cast<double>(v.size()));
    const std::pair<const char*, double> qs[] = {{"p50", .5}, {"p90", .9},   {"p95", .95},
                                                 {"p99", .99}, {"p99.9", .999}};
    for (auto [name, p] : qs) {
        os << ",\"" << name << "\":";
        put_num(os, Dist::q(v, p));
    }
    os << ",\"min\":";
    put_num(os, v.empty() ? NAN : v.front());
    os << ",\"max\":";
    put_num(os, v.empty() ? NAN : v.back());
    os << "}";
}

void put_array(std::ostream& os, const std::vector<double>& v) {
    os << "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) os << ",";
        put_num(os, v[i]);
    }
    os << "]";
}

std::string json_escape(const std::string& s) {
    std::string r;
    for (char c : s) {
        if (c == '"' || c == '\\') r += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        r += c;
    }
    return r;
}

// ---------------------------------------------------------------- SSE scan

// Splits the body into SSE events (blank-line separated) and notes, per event,
// whether it carries content, an error, or the [DONE] marker.
struct SseScan {
    std::string event;
    bool prev_newline = false, done = false, error = false;

    template <typename OnContent>
    void feed(const char* p, size_t n, OnContent&& on_content) {
        for (size_t i = 0; i < n; ++i) {
            char c = p[i];
            if (c == '\r') continue;
            if (c == '\n' && prev_newline) {
                finish(on_content);
                prev_newline = false;
                continue;
            }
            prev_newline = c == '\n';
            event += c;
        }
    }

    template <typename OnContent>
    void finish(OnContent&& on_content) {
        std::string_view e = event;
        if (e.find("data: [DONE]") != std::string_view::npos) done = true;
        else if (e.find("\"error\"") != std::string_view::npos && e.find("\"choices\"") == std::string_view::npos)
            error = true;
        else if (auto k = e.find("\"content\":\""); k != std::string_view::npos && k + 11 < e.size() && e[k + 11] != '"')
            on_content();
        event.clear();
    }
};

// ---------------------------------------------------------------- the run

class Run;

std::vector<std::string> read_keys(const std::string& path) {
    std::vector<std::string> keys;
    if (path.empty()) return keys;
    std::ifstream in(path);
    if (!in) usage_error("cannot read --keys-file " + path);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) keys.push_back(line);
    if (keys.empty()) usage_error("--keys-file " + path + " has no keys");
    return keys;
}

struct Request {
    long index = 0;
    bool measured = false;
    Clock::time_point sched;
    Clock::time_point first_content{}, last_content{};
    bool has_content = false;
    std::vector<double> gaps;
    SseScan sse;
};

class Conn : public std::enable_shared_from_this<Conn> {
public:
    Conn(Run& run, asio::io_context& io) : run_(run), sock_(io), timer_(io) {}
    void start(std::unique_ptr<Request> r);
    void close() {
        error_code ignored;
        sock_.close(ignored);
    }
    bool connected = false;

private:
    void write();
    void read_header();
    void read_body();
    void arm_timeout();
    void done(int status, Err err);
    void fail(const error_code& ec) {
        if (std::getenv("TAILGATE_LOADGEN_DEBUG")) std::fprintf(stderr, "io error: %s\n", ec.message().c_str());
        done(0, timed_out_ ? kTimeout : kTransport);
    }

    Run& run_;
    tcp::socket sock_;
    asio::steady_timer timer_;
    boost::beast::flat_buffer buf_;
    std::optional<http::response_parser<http::buffer_body>> parser_;
    std::unique_ptr<Request> req_;
    char body_buf_[16384];
    unsigned gen_ = 0;
    bool timed_out_ = false;
};

class Run {
public:
    Run(Options o) : opt_(std::move(o)), sched_timer_(io_) {
        std::string body = opt_.body;
        if (body.empty())
            body = "{\"model\":\"" + json_escape(opt_.model) +
                   "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":" +
                   (opt_.stream ? "true" : "false") + "}";
        std::ostringstream r;
        r << "POST " << opt_.path << " HTTP/1.1\r\nHost: " << opt_.host << ":" << opt_.port
          << "\r\nContent-Type: application/json\r\nAccept: " << (opt_.stream ? "text/event-stream" : "application/json")
          << "\r\nContent-Length: " << body.size() << "\r\n";
        for (auto& h : opt_.headers) r << h << "\r\n";
        // One prebuilt request per key (the keys rotate request by request), else one for all.
        for (const auto& key : read_keys(opt_.keys_file))
            wires_.push_back(r.str() + "Authorization: Bearer " + key + "\r\n\r\n" + body);
        if (wires_.empty()) wires_.push_back(r.str() + "\r\n" + body);
        tcp::resolver res(io_);
        endpoints_ = res.resolve(opt_.host, opt_.port);
        total_ = std::lround(opt_.rate * (opt_.warmup_s + opt_.duration_s));
        warm_n_ = std::lround(opt_.rate * opt_.warmup_s);
        samples_.resize(static_cast<size_t>(std::max(0L, total_ - warm_n_)));
    }

    int run() {
        start_ = Clock::now() + std::chrono::milliseconds(20);  // let the first timer be on time
        measure_start_ = at(warm_n_);
        schedule();
        io_.run();
        return 0;
    }

    void write_json(std::ostream& os) const;
    void print_summary() const;

    // used by Conn
    const std::string& wire(long index) const { return wires_[static_cast<size_t>(index) % wires_.size()]; }
    const Options& opt() const { return opt_; }
    const tcp::resolver::results_type& endpoints() const { return endpoints_; }
    void finished(std::shared_ptr<Conn> c, std::unique_ptr<Request> r, int status, Err err, bool reusable);
    void sent(const Request& r) {
        if (r.measured) samples_[idx(r)].lag_ms = ms_between(r.sched, Clock::now());
    }

private:
    size_t idx(const Request& r) const { return static_cast<size_t>(r.index - warm_n_); }
    Clock::time_point at(long i) const {
        return start_ + std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(i) / opt_.rate));
    }

    void schedule() {
        auto now = Clock::now();
        while (next_ < total_ && at(next_) <= now) {
            auto r = std::make_unique<Request>();
            r->index = next_;
            r->sched = at(next_);
            r->measured = next_ >= warm_n_;
            if (r->measured) {
                dispatch_lag_.push_back(ms_between(r->sched, now));
                samples_[idx(*r)].t_ms = ms_between(measure_start_, r->sched);
            }
            ++next_;
            dispatch(std::move(r));
        }
        if (next_ < total_) {
            sched_timer_.expires_at(at(next_));
            sched_timer_.async_wait([this](error_code ec) {
                if (!ec) schedule();
            });
        } else {
            // Everything is sent: give the stragglers until their own timeout, then stop.
            end_sched_ = Clock::now();
            sched_timer_.expires_at(at(total_ - 1) + std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(opt_.timeout_s + 1)));
            sched_timer_.async_wait([this](error_code ec) {
                if (!ec) stop();
            });
            maybe_stop();
        }
    }

    void dispatch(std::unique_ptr<Request> r) {
        ++in_flight_;
        max_in_flight_ = std::max(max_in_flight_, in_flight_);
        if (!idle_.empty()) {
            auto c = idle_.back();
            idle_.pop_back();
            c->start(std::move(r));
        } else if (open_ < opt_.cap) {
            open_conn()->start(std::move(r));
        } else {
            queue_.push_back(std::move(r));
            max_queued_ = std::max(max_queued_, queue_.size());
        }
    }

    std::shared_ptr<Conn> open_conn() {
        ++open_;
        ++opened_total_;
        max_open_ = std::max(max_open_, open_);
        auto c = std::make_shared<Conn>(*this, io_);
        all_.push_back(c);
        return c;
    }

    void maybe_stop() {
        if (next_ >= total_ && in_flight_ == 0) stop();
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        stop_time_ = Clock::now();
        sched_timer_.cancel();
        for (auto& w : all_)
            if (auto c = w.lock()) c->close();
        io_.stop();
    }

    Options opt_;
    asio::io_context io_;
    asio::steady_timer sched_timer_;
    tcp::resolver::results_type endpoints_;
    std::vector<std::string> wires_;
    Clock::time_point start_, measure_start_, end_sched_{}, stop_time_{};
    long total_ = 0, warm_n_ = 0, next_ = 0, in_flight_ = 0, max_in_flight_ = 0;
    long open_ = 0, opened_total_ = 0, max_open_ = 0;
    size_t max_queued_ = 0;
    bool stopped_ = false;
    std::vector<std::shared_ptr<Conn>> idle_;
    std::vector<std::weak_ptr<Conn>> all_;
    std::deque<std::unique_ptr<Request>> queue_;
    std::vector<Sample> samples_;
    std::vector<double> dispatch_lag_, gaps_;
};

void Run::finished(std::shared_ptr<Conn> c, std::unique_ptr<Request> r, int status, Err err, bool reusable) {
    --in_flight_;
    if (r->measured) {
        auto& s = samples_[idx(*r)];
        auto now = Clock::now();
        s.t_ms = ms_between(measure_start_, r->sched);
        s.status = status;
        s.err = err;
        s.lat_ms = ms_between(r->sched, now);
        if (r->has_content) s.ttft_ms = ms_between(r->sched, r->first_content);
        if (err == kOk) gaps_.insert(gaps_.end(), r->gaps.begin(), r->gaps.end());
    }
    if (stopped_) return;
    if (reusable) {
        if (!queue_.empty()) {
            auto next = std::move(queue_.front());
            queue_.pop_front();
            c->start(std::move(next));
        } else {
            idle_.push_back(std::move(c));
        }
    } else {
        --open_;
        c->close();
        if (!queue_.empty() && open_ < opt_.cap) {
            auto next = std::move(queue_.front());
            queue_.pop_front();
            open_conn()->start(std::move(next));
        }
    }
    maybe_stop();
}

void Conn::start(std::unique_ptr<Request> r) {
    req_ = std::move(r);
    timed_out_ = false;
    arm_timeout();
    if (connected) return write();
    asio::async_connect(sock_, run_.endpoints(), [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
        if (ec) return self->fail(ec);
        self->connected = true;
        self->sock_.set_option(tcp::no_delay(true), ec);
        self->write();
    });
}

void Conn::arm_timeout() {
    unsigned gen = ++gen_;
    timer_.expires_at(req_->sched + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(run_.opt().timeout_s)));
    timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (ec || gen != self->gen_ || !self->req_) return;
        self->timed_out_ = true;
        self->close();  // the pending operation completes with an error and reports the timeout
    });
}

void Conn::write() {
    run_.sent(*req_);
    asio::async_write(sock_, asio::buffer(run_.wire(req_->index)), [self = shared_from_this()](error_code ec, size_t) {
        if (ec) return self->fail(ec);
        self->read_header();
    });
}

void Conn::read_header() {
    parser_.emplace();
    parser_->body_limit(std::uint64_t{1} << 40);
    http::async_read_header(sock_, buf_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
        // buffer_body has no buffer yet: body bytes that came with the header stop the read here.
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return self->fail(ec);
        self->read_body();
    });
}

void Conn::read_body() {
    if (parser_->is_done()) {
        int status = static_cast<int>(parser_->get().result_int());
        Err err = status / 100 != 2 ? kHttp : kOk;
        if (err == kOk && run_.opt().stream && (req_->sse.error || !req_->sse.done)) err = kStream;
        return done(status, err);
    }
    auto& body = parser_->get().body();
    body.data = body_buf_;
    body.size = sizeof body_buf_;
    http::async_read_some(sock_, buf_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return self->fail(ec);
        auto& b = self->parser_->get().body();
        size_t n = sizeof self->body_buf_ - b.size;
        if (self->run_.opt().stream && n) {
            auto now = Clock::now();
            auto& r = *self->req_;
            r.sse.feed(self->body_buf_, n, [&] {
                if (!r.has_content) {
                    r.has_content = true;
                    r.first_content = now;
                } else {
                    r.gaps.push_back(ms_between(r.last_content, now));
                }
                r.last_content = now;
            });
        }
        self->read_body();
    });
}

void Conn::done(int status, Err err) {
    if (std::getenv("TAILGATE_LOADGEN_DEBUG") && err != kOk)
        std::fprintf(stderr, "request %ld: %s status %d\n", req_->index, kErrName[err], status);
    ++gen_;
    timer_.cancel();
    bool reusable = err == kOk || err == kHttp || err == kStream;
    reusable = reusable && parser_ && parser_->is_done() && parser_->keep_alive() && !timed_out_;
    parser_.reset();
    if (!reusable) buf_.clear();
    auto r = std::move(req_);
    run_.finished(shared_from_this(), std::move(r), status, err, reusable);
}

void Run::write_json(std::ostream& os) const {
    std::vector<double> lat, ttft, lag, t, st, er;
    std::map<std::string, long> errors, statuses;
    long ok = 0;
    for (auto& s : samples_) {
        t.push_back(s.t_ms);
        st.push_back(s.status);
        er.push_back(s.err);
        if (s.lag_ms >= 0) lag.push_back(s.lag_ms);
        ++statuses[std::to_string(s.status)];
        if (s.err == kOk) {
            ++ok;
            lat.push_back(s.lat_ms);
            if (s.ttft_ms >= 0) ttft.push_back(s.ttft_ms);
        } else {
            ++errors[kErrName[s.err]];
        }
    }
    double wall = ms_between(start_, stop_time_) / 1e3;
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    os << "{\"label\":\"" << json_escape(opt_.label) << "\",\"config\":{\"url\":\"" << json_escape(opt_.url)
       << "\",\"rate\":";
    put_num(os, opt_.rate);
    os << ",\"duration_s\":";
    put_num(os, opt_.duration_s);
    os << ",\"warmup_s\":";
    put_num(os, opt_.warmup_s);
    os << ",\"stream\":" << (opt_.stream ? "true" : "false") << ",\"streams\":" << opt_.streams
       << ",\"concurrency_cap\":" << opt_.cap << ",\"timeout_s\":";
    put_num(os, opt_.timeout_s);
    os << "},\"summary\":{\"requests\":" << samples_.size() << ",\"ok\":" << ok << ",\"errors\":"
       << samples_.size() - static_cast<size_t>(ok) << ",\"error_kinds\":{";
    bool first = true;
    for (auto& [k, n] : errors) os << (first ? "" : ",") << "\"" << k << "\":" << n, first = false;
    os << "},\"status_counts\":{";
    first = true;
    for (auto& [k, n] : statuses) os << (first ? "" : ",") << "\"" << k << "\":" << n, first = false;
    double send_span = end_sched_ > measure_start_ ? ms_between(measure_start_, end_sched_) / 1e3 : NAN;
    os << "},\"achieved_send_rate\":";
    put_num(os, send_span > 0 ? static_cast<double>(samples_.size()) / send_span : NAN);
    os << ",\"connections_opened\":" << opened_total_ << ",\"max_connections\":" << max_open_
       << ",\"max_in_flight\":" << max_in_flight_ << ",\"max_queued\":" << max_queued_ << ",\"wall_s\":";
    put_num(os, wall);
    os << ",\"loadgen_cpu_s\":";
    put_num(os, cpu);
    os << ",\"latency_ms\":";
    put_dist(os, lat);
    os << ",\"ttft_ms\":";
    put_dist(os, ttft);
    os << ",\"gap_ms\":";
    put_dist(os, gaps_);
    os << ",\"dispatch_lag_ms\":";
    put_dist(os, dispatch_lag_);
    os << ",\"send_lag_ms\":";
    put_dist(os, lag);
    // Per-request arrays, in schedule order (latency/ttft -1 when absent), and every gap.
    std::vector<double> all_lat, all_ttft;
    for (auto& s : samples_) {
        all_lat.push_back(s.err == kOk ? s.lat_ms : -1);
        all_ttft.push_back(s.err == kOk ? s.ttft_ms : -1);
    }
    os << "},\"samples\":{\"t_ms\":";
    put_array(os, t);
    os << ",\"latency_ms\":";
    put_array(os, all_lat);
    os << ",\"ttft_ms\":";
    put_array(os, all_ttft);
    os << ",\"status\":[";
    for (size_t i = 0; i < samples_.size(); ++i) os << (i ? "," : "") << samples_[i].status;
    os << "],\"err\":[";
    for (size_t i = 0; i < samples_.size(); ++i) os << (i ? "," : "") << samples_[i].err;
    os << "],\"gap_ms\":";
    put_array(os, gaps_);
    os << "}}\n";
}

void Run::print_summary() const {
    std::vector<double> lat;
    long errors = 0;
    for (auto& s : samples_) {
        if (s.err == kOk) lat.push_back(s.lat_ms);
        else ++errors;
    }
    std::sort(lat.begin(), lat.end());
    auto lags = dispatch_lag_;
    std::sort(lags.begin(), lags.end());
    std::fprintf(stderr,
                 "%s: %zu requests, %ld errors, latency p50 %.3f p99 %.3f p99.9 %.3f ms, "
                 "dispatch lag p99 %.3f ms, %ld connections\n",
                 opt_.label.empty() ? opt_.url.c_str() : opt_.label.c_str(), samples_.size(), errors,
                 Dist::q(lat, .5), Dist::q(lat, .99), Dist::q(lat, .999), Dist::q(lags, .99), opened_total_);
}

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);
    raise_nofile();
    try {
        Run run(opt);
        run.run();
        if (opt.out.empty()) {
            run.write_json(std::cout);
        } else {
            std::ofstream f(opt.out);
            run.write_json(f);
            if (!f) {
                std::cerr << "tailgate-loadgen: cannot write " << opt.out << "\n";
                return 1;
            }
        }
        if (!opt.quiet) run.print_summary();
    } catch (const std::exception& e) {
        std::cerr << "tailgate-loadgen: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

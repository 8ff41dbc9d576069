#include "server.hpp"
#include "responses.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <optional>
#include <sstream>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "state.hpp"

namespace tailgate::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxQueued = 8;  // pipelined requests read ahead
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 64ull * 1024 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool peer_gone(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == http::error::partial_message;
}

bool http_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

void fail(beast::error_code ec, const char* what, bool verbose) {
  if (!verbose || ec == asio::error::operation_aborted) return;
  std::cerr << "tailgate-mock: " << what << ": " << ec.message() << "\n";
}

Clock::duration ms(double v) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(v));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Appends one HTTP/1.1 chunk holding `data` to `out`.
void append_chunk(std::string& out, std::string_view data) {
  char size[20];
  auto [end, ec] = std::to_chars(size, size + sizeof size, data.size(), 16);
  (void)ec;
  out.append(size, end);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

}  // namespace

// One client connection. A read is kept pending at all times (even while a
// request is being answered) so a client that disconnects is noticed at once.
// `Stream` is tcp::socket (HTTP) or beast::ssl_stream<tcp::socket> (HTTPS).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  template <class... Args>
  Session(std::shared_ptr<State> state, bool verbose, Args&&... stream_args)
      : socket_(std::forward<Args>(stream_args)...),
        timer_(socket_.get_executor()),
        state_(std::move(state)),
        verbose_(verbose) {}

  void run() {
    if constexpr (kTls) {
      socket_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
    } else {
      asio::dispatch(socket_.get_executor(), beast::bind_front_handler(&Session::do_read, this->shared_from_this()));
    }
  }

 private:
  using Request = http::request<http::string_body>;
  enum class Fault { none, reset, stall, garbage, error_event };

  tcp::socket& raw() { return beast::get_lowest_layer(socket_); }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      fail(ec, "tls handshake", verbose_);
      return close();
    }
    do_read();
  }

  // The request being answered.
  struct Exchange {
    std::uint64_t gen = 0;
    RecordPtr rec;  // null for control API requests
    unsigned version = 11;
    bool keep_alive = true;
    bool chunked = true;
    std::shared_ptr<const Settings> settings;
    Reply reply;
    Clock::time_point t0, first_token;
    std::size_t next_step = 0;
    bool headers_sent = false;
    Fault fault = Fault::none;
    std::size_t fault_at = 0;  // stream step before which the fault hits
    std::string detail;        // reported when the client gives up
  };

  // ---- reading -------------------------------------------------------------

  void do_read() {
    if (closed_ || reading_) return;
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    http::async_read_header(socket_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, this->shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    auto expect = parser_->get()[http::field::expect];
    if (!ex_ && beast::iequals(expect, "100-continue")) {
      asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->on_read_error(ec);
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(socket_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec) return on_read_error(ec);
    if (closed_) return;
    if (closing_) return close();
    queue_.push_back(parser_->release());
    process_next();
    if (queue_.size() < kMaxQueued) do_read();
  }

  void on_read_error(beast::error_code ec) {
    reading_ = false;
    if (closed_ || ec == asio::error::operation_aborted) return;
    if (ex_) return client_gone(ec, "read");
    if (peer_gone(ec) || !http_parse_error(ec) || closing_) {
      if (!peer_gone(ec)) fail(ec, "read", verbose_);
      return close();
    }
    // Malformed HTTP: answer 400 (413/431 for the limits) and close.
    int status = ec == http::error::body_limit ? 413 : ec == http::error::header_limit ? 431 : 400;
    new_exchange(11, false);
    respond(status, error_body(status, "malformed HTTP request: " + ec.message()), Outcome::failed);
  }

  // ---- dispatching -----------------------------------------------------------

  void process_next() {
    if (ex_ || queue_.empty() || closed_ || closing_) return;
    Request req = std::move(queue_.front());
    queue_.pop_front();
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    new_exchange(req.version(), req.keep_alive());
    if (path == "/mock" || path.substr(0, 6) == "/mock/")
      handle_control(req, path, target);
    else
      handle_api(std::move(req), path);
  }

  void new_exchange(unsigned version, bool keep_alive) {
    ex_.emplace();
    ex_->gen = ++gen_;
    ex_->version = version;
    ex_->keep_alive = keep_alive;
    ex_->chunked = version >= 11;
    ex_->t0 = Clock::now();
  }

  void handle_control(const Request& req, std::string_view path, std::string_view target) {
    const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
    if (get && path == "/mock/stats") return respond(200, state_->stats_json(), Outcome::completed);
    if (get && path == "/mock/config") return respond(200, state_->config_json(), Outcome::completed);
    if (get && path == "/mock/requests") {
      std::size_t limit = static_cast<std::size_t>(-1);
      if (auto q = target.find("limit="); q != std::string_view::npos) {
        std::string_view v = target.substr(q + 6);
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec == std::errc()) limit = n;
        (void)p;
      }
      return respond(200, state_->requests_json(limit), Outcome::completed);
    }
    if (post && path == "/mock/config") {
      std::string out;
      if (auto err = state_->merge_config(req.body(), out); !err.empty())
        return respond(400, error_body(400, err), Outcome::failed);
      return respond(200, std::move(out), Outcome::completed);
    }
    if ((post || get) && path == "/mock/reset") {
      state_->reset();
      return respond(200, state_->config_json(), Outcome::completed);
    }
    respond(404, error_body(404, "unknown control endpoint"), Outcome::failed);
  }

  void handle_api(Request&& req, std::string_view path) {
    Exchange& ex = *ex_;
    ex.settings = state_->settings();
    const Settings& s = *ex.settings;

    auto rec = std::make_shared<RequestRecord>();
    rec->id = state_->next_id();
    rec->method = std::string(req.method_string());
    rec->target = std::string(req.target());
    rec->path = std::string(path);
    for (const auto& f : req) rec->headers.emplace_back(lower(f.name_string()), std::string(f.value()));
    rec->body_size = req.body().size();
    rec->body = req.body().substr(0, State::kMaxLoggedBody);
    rec->received_ms = state_->now_ms();
    ex.rec = rec;

    const Route r = route(req.method_string(), path);
    if (const Denial d = authorize(r, s, req.method_string(), req.target(), rec->headers, req.body()); d.status) {
      state_->begin(rec);  // a bad signature or token: refused at once, never faulted
      return respond(d.status, d.body, Outcome::failed, false, "unauthorized");
    }
    Reply reply = build_reply(r, req.body(), ReplyContext{s, state_->name(), rec->id, &rec->headers});
    rec->model = reply.model;
    rec->stream = reply.stream;
    if (reply.status != 200 || r.endpoint == Endpoint::models || r.endpoint == Endpoint::model ||
        r.endpoint == Endpoint::token) {
      // Errors in the request, model listings and OAuth tokens: answered at once, no faults.
      state_->begin(rec);
      return respond(reply.status, std::move(reply.body),
                     reply.status == 200 ? Outcome::completed : Outcome::failed);
    }

    const Plan plan = state_->sample(s);
    rec->ttft_ms = plan.ttft_ms;
    rec->straggler = plan.straggler;
    state_->begin(rec);

    if (plan.reset_before) return abort_connection("reset_before");
    if (plan.fail) {
      return at(ex.t0 + ms(s.fail_delay_ms), [this, shape = reply.error_body] {
        const int status = ex_->settings->fail_status;
        respond(status, shape(status, "mock injected " + std::to_string(status) + " (" + state_->name() + ")"),
                Outcome::failed, true, "fail_rate");
      });
    }
    if (s.stall) {
      ex.detail = "stall";
      return;  // the pending read reports the client leaving
    }

    ex.reply = std::move(reply);
    ex.first_token = ex.t0 + ms(plan.ttft_ms);
    if (s.reset_after_headers) {
      // The head goes out at once, the RST follows at TTFT (no body byte ever).
      out_ = head_only();
      return write_out([this] { at(ex_->first_token, [this] { abort_connection("reset_after_headers"); }); });
    }
    if (!s.garbage.empty() && start_garbage(r)) return;
    if (s.reset_mid_stream_after >= 0) {
      ex.fault = Fault::reset;
      ex.fault_at = static_cast<std::size_t>(s.reset_mid_stream_after);
    } else if (s.stall_mid_stream_after >= 0) {
      ex.fault = Fault::stall;
      ex.fault_at = static_cast<std::size_t>(s.stall_mid_stream_after);
    } else if (s.error_event_after >= 0 && ex.reply.stream && !ex.reply.error_event.empty()) {
      ex.fault = Fault::error_event;
      ex.fault_at = static_cast<std::size_t>(s.error_event_after);
    }

    if (!ex.reply.stream) {
      // Whole body after TTFT + chunks * chunk_delay (embeddings: TTFT only);
      // a mid-stream fault hits when its chunk would have been generated.
      const auto chunks = r.endpoint == Endpoint::embeddings ? 0 : static_cast<std::size_t>(std::max(s.chunks, 0));
      const std::size_t k = ex.fault == Fault::none ? chunks : std::min(ex.fault_at, chunks);
      return at(ex.first_token + ms(s.chunk_delay_ms * static_cast<double>(k)), [this] {
        if (ex_->fault != Fault::none) return apply_fault();
        respond(200, std::move(ex_->reply.body), Outcome::completed, false, {}, ex_->reply.content_type);
      });
    }
    ex.fault_at = std::min(ex.fault_at, ex.reply.steps.size());
    start_stream();
  }

  // ---- garbage ---------------------------------------------------------------------

  // Sets up the `garbage` mode of a request; true when it answers the request
  // entirely (no normal stream/body follows).
  bool start_garbage(const Route& r) {
    Exchange& ex = *ex_;
    const Settings& s = *ex.settings;
    const std::string& g = s.garbage;
    const auto chunks = r.endpoint == Endpoint::embeddings ? 0 : static_cast<std::size_t>(std::max(s.chunks, 0));
    const auto body_due = ex.first_token + ms(s.chunk_delay_ms * static_cast<double>(chunks));
    if (g == "html_error") {
      at(ex.first_token, [this] {
        respond(502,
                "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
                "</center><hr><center>mock-proxy</center></body></html>\n",
                Outcome::failed, false, "html_error", "text/html");
      });
      return true;
    }
    if (g == "non_json" || (g == "bad_sse" && !ex.reply.stream)) {
      // 200 with a body that is not JSON (streams get it instead of SSE).
      at(ex.first_token, [this] {
        respond(200, "upstream says: this is not JSON {\n", Outcome::completed, false, ex_->settings->garbage);
      });
      return true;
    }
    if (g == "no_done") {
      if (ex.reply.stream)
        std::erase_if(ex.reply.tail, [&](const std::string& e) { return e == ex.reply.end_event || is_responses_end(e); });
      return false;  // non-stream: answered normally
    }
    if (!ex.reply.stream) {
      if (g == "huge_body") {
        at(body_due, [this] {
          respond(200, huge_json(), Outcome::completed, false, "huge_body");
        });
      } else {  // truncated_chunked: half the body in a chunk, then a chunk that is cut short
        at(body_due, [this] {
          http::response<http::empty_body> res{http::status::ok, ex_->version};
          set_common_headers(res);
          res.set(http::field::content_type, "application/json");
          res.chunked(true);
          std::ostringstream os;
          os << res.base();
          std::string out = os.str();
          const std::string& body = ex_->reply.body;
          append_chunk(out, std::string_view(body).substr(0, body.size() / 2));
          out += "400\r\n";
          out += std::string_view(body).substr(body.size() / 2, 16);
          write_and_close(std::move(out), "truncated_chunked");
        });
      }
      return true;
    }
    ex.fault = Fault::garbage;  // streams: hits after `garbage_after` content chunks
    ex.fault_at = std::min(static_cast<std::size_t>(s.garbage_after), ex.reply.steps.size());
    start_stream();
    return true;
  }

  // A chat.completion whose content is huge_body_mib MiB of 'x'.
  std::string huge_json() const {
    const auto n = static_cast<std::size_t>(ex_->settings->huge_body_mib * 1024 * 1024);
    std::string out = R"({"id":"chatcmpl-huge","object":"chat.completion","created":0,"model":")" + ex_->reply.model +
                      R"(","choices":[{"index":0,"message":{"role":"assistant","content":")";
    out.append(n, 'x');
    out += R"("},"finish_reason":"stop"}]})";
    return out;
  }

  // Status line and headers of the normal answer, without any body byte.
  std::string head_only() {
    Exchange& ex = *ex_;
    http::response<http::empty_body> res{http::status::ok, ex.version};
    set_common_headers(res);
    if (ex.reply.stream) {
      res.set(http::field::content_type, ex.reply.stream_content_type);
      res.chunked(ex.chunked);
    } else {
      res.set(http::field::content_type, ex.reply.content_type);
      res.content_length(ex.reply.body.size());
    }
    res.keep_alive(ex.keep_alive);
    std::ostringstream os;
    os << res.base();
    return os.str();
  }

  // Stream garbage at step `fault_at`: what goes out, and whether the stream goes on.
  void apply_garbage() {
    Exchange& ex = *ex_;
    const std::string& g = ex.settings->garbage;
    out_.clear();
    append_head();
    if (g == "truncated_chunked") {
      // A chunk announcing 1 KiB, a few bytes of it, then a clean close (FIN).
      out_ += "400\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut";
      return write_and_close(std::move(out_), "truncated_chunked");
    }
    if (g == "bad_sse") {
      // A data line that is not JSON and a line that is not SSE at all.
      append_event("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"broken\n\n");
      append_event("this line is not SSE\n\n");
    } else {  // huge_body: one content event of huge_body_mib MiB
      const auto n = static_cast<std::size_t>(ex.settings->huge_body_mib * 1024 * 1024);
      std::string ev = R"(data: {"id":"chatcmpl-huge","object":"chat.completion.chunk","created":0,"model":")" +
                       ex.reply.model + R"(","choices":[{"index":0,"delta":{"content":")";
      ev.append(n, 'x');
      ev += "\"},\"finish_reason\":null}]}\n\n";
      append_event(ev);
    }
    ex.fault = Fault::none;  // the rest of the stream follows normally
    write_out([this] { next_step(); });
  }

  // error_event_after: the API's error event in place of the next content chunk, then a clean end.
  void send_error_event() {
    out_.clear();
    append_head();
    append_event(ex_->reply.error_event);
    if (ex_->chunked) out_ += "0\r\n\r\n";
    write_out([this] {
      finish(Outcome::failed, 200, "error_event");
      end_exchange();
    });
  }

  // Writes `bytes`, then closes the connection cleanly (FIN) mid-response.
  void write_and_close(std::string bytes, const char* detail) {
    out_ = std::move(bytes);
    ex_->detail = detail;
    asio::async_write(socket_, asio::buffer(out_),
                      [self = this->shared_from_this(), gen = ex_->gen](beast::error_code ec, std::size_t) {
                        if (!self->ex_ || self->ex_->gen != gen) return;
                        if (ec) return self->client_gone(ec, "write");
                        self->finish(Outcome::failed, 200, self->ex_->detail);
                        self->ex_.reset();
                        beast::error_code ignored;
                        self->raw().shutdown(tcp::socket::shutdown_send, ignored);
                        self->close();
                      });
  }

  // ---- whole responses ------------------------------------------------------------

  void respond(int status, std::string body, Outcome outcome, bool retry_headers = false,
               std::string detail = {}, std::string_view content_type = "application/json") {
    Exchange& ex = *ex_;
    // Owned by the write operation: it must outlive the exchange when the
    // client leaves while the write is pending.
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(ex.version);
    res->result(static_cast<unsigned>(status));
    set_common_headers(*res);
    res->set(http::field::content_type, content_type);
    if (retry_headers) {
      if (ex.settings->retry_after >= 0) res->set(http::field::retry_after, number(ex.settings->retry_after));
      if (ex.settings->retry_after_ms >= 0) res->set("retry-after-ms", number(ex.settings->retry_after_ms));
    }
    res->keep_alive(ex.keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    ex.detail = std::move(detail);
    http::async_write(socket_, *res,
                      [self = this->shared_from_this(), res, gen = ex.gen, outcome, status](beast::error_code ec, std::size_t) {
                        if (!self->ex_ || self->ex_->gen != gen) return;
                        if (ec) return self->client_gone(ec, "write");
                        self->finish(outcome, status, self->ex_->detail);
                        self->end_exchange();
                      });
  }

  template <class Message>
  void set_common_headers(Message& m) {
    m.set(http::field::server, "tailgate-mock");
    m.set("x-mock-name", state_->name());
    if (ex_->rec) m.set("x-mock-request-id", std::to_string(ex_->rec->id));
  }

  // ---- streams -----------------------------------------------------------------------

  Clock::time_point step_time(std::size_t i) const {
    return ex_->first_token + ms(ex_->settings->chunk_delay_ms * static_cast<double>(i));
  }

  void start_stream() {
    if (ex_->settings->headers_at_ttft) return next_step();
    out_.clear();
    append_head();
    write_out([this] { next_step(); });
  }

  // Waits for step `next_step` (or the fault, or the tail: right after the
  // last step, at TTFT when there are no steps).
  void next_step() {
    Exchange& ex = *ex_;
    const std::size_t i = ex.next_step;
    if (ex.fault != Fault::none && i == ex.fault_at) return at(step_time(i), [this] { apply_fault(); });
    const auto when = i < ex.reply.steps.size() ? step_time(i) : i == 0 ? ex.first_token : Clock::time_point{};
    at(when, [this] { send_due(); });
  }

  // Writes every step that is due by now (several only when delays are ~0),
  // each SSE event as its own HTTP chunk, then the tail after the last step.
  void send_due() {
    Exchange& ex = *ex_;
    const std::size_t n = ex.reply.steps.size();
    const auto now = Clock::now();
    out_.clear();
    append_head();
    while (ex.next_step < n && !(ex.fault != Fault::none && ex.next_step == ex.fault_at) &&
           step_time(ex.next_step) <= now) {
      for (const auto& e : ex.reply.steps[ex.next_step]) append_event(e);
      ++ex.next_step;
    }
    if (ex.next_step < n || (ex.fault != Fault::none && ex.fault_at == n))
      return write_out([this] { next_step(); });
    for (const auto& e : ex.reply.tail) append_event(e);
    if (ex.chunked) out_ += "0\r\n\r\n";
    write_out([this] {
      finish(Outcome::completed, 200);
      end_exchange();
    });
  }

  // Headers and the role chunk(s), the first time only.
  void append_head() {
    Exchange& ex = *ex_;
    if (ex.headers_sent) return;
    ex.headers_sent = true;
    http::response<http::empty_body> res{http::status::ok, ex.version};
    set_common_headers(res);
    res.set(http::field::content_type, ex.reply.stream_content_type);
    res.set(http::field::cache_control, "no-cache");
    if (ex.chunked) {
      res.chunked(true);
    } else {
      ex.keep_alive = false;  // HTTP/1.0: the body ends when the connection closes
    }
    res.keep_alive(ex.keep_alive);
    std::ostringstream os;
    os << res.base();
    out_ += os.str();
    for (const auto& e : ex.reply.first) append_event(e);
  }

  // Each SSE event goes out as its own HTTP chunk.
  void append_event(std::string_view event) {
    if (ex_->chunked)
      append_chunk(out_, event);
    else
      out_ += event;
  }

  template <class F>
  void write_out(F next) {
    asio::async_write(socket_, asio::buffer(out_),
                      [self = this->shared_from_this(), gen = ex_->gen, next](beast::error_code ec, std::size_t) {
                        if (!self->ex_ || self->ex_->gen != gen) return;
                        if (ec) return self->client_gone(ec, "write");
                        next();
                      });
  }

  void apply_fault() {
    if (ex_->fault == Fault::garbage) return apply_garbage();
    if (ex_->fault == Fault::error_event) return send_error_event();
    if (ex_->fault == Fault::reset) return abort_connection(ex_->reply.stream ? "reset_mid_stream" : "reset_mid_response");
    ex_->detail = ex_->reply.stream ? "stall_mid_stream" : "stall_mid_response";  // wait for the client to leave
  }

  // ---- timers and endings ---------------------------------------------------------------

  // Runs `f` at `when` unless the exchange ended meanwhile.
  template <class F>
  void at(Clock::time_point when, F f) {
    if (when <= Clock::now()) return f();  // due already (zero delays): skip the timer round trip
    timer_.expires_at(when);
    timer_.async_wait([self = this->shared_from_this(), gen = ex_->gen, f](beast::error_code ec) {
      if (ec || !self->ex_ || self->ex_->gen != gen) return;
      f();
    });
  }

  void finish(Outcome outcome, int status, std::string detail = {}) {
    if (ex_ && ex_->rec) state_->finish(*ex_->rec, outcome, status, std::move(detail));
  }

  // The response went out completely.
  void end_exchange() {
    const bool keep_alive = ex_->keep_alive;
    ex_.reset();
    timer_.cancel();
    if (!keep_alive) {
      closing_ = true;
      beast::error_code ec;
      raw().shutdown(tcp::socket::shutdown_send, ec);
      if (!reading_) close();  // otherwise the pending read sees the client's EOF
      return;
    }
    process_next();
    if (queue_.size() < kMaxQueued) do_read();
  }

  // The client closed the connection (or it broke) before we were done.
  void client_gone(beast::error_code ec, const char* what) {
    if (!peer_gone(ec)) fail(ec, what, verbose_);
    finish(Outcome::cancelled, 0, ex_->detail.empty() ? "client_disconnected" : ex_->detail);
    ex_.reset();
    close();
  }

  // Drops the connection abruptly (RST), without finishing the response.
  void abort_connection(const char* detail) {
    finish(Outcome::reset, 0, detail);
    ex_.reset();
    beast::error_code ec;
    raw().set_option(asio::socket_base::linger(true, 0), ec);
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    timer_.cancel();
    beast::error_code ec;
    raw().close(ec);
  }

  Stream socket_;
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
  const bool verbose_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Request> queue_;
  std::optional<Exchange> ex_;
  std::string out_;  // bytes of the stream write in progress
  std::uint64_t gen_ = 0;
  bool reading_ = false;
  bool closing_ = false;  // sent Connection: close
  bool closed_ = false;
};

Listener::Listener(asio::io_context& ioc, const tcp::endpoint& endpoint, std::shared_ptr<State> state, bool verbose,
                   std::shared_ptr<asio::ssl::context> tls)
    : ioc_(ioc), acceptor_(asio::make_strand(ioc)), retry_timer_(acceptor_.get_executor()), state_(std::move(state)),
      verbose_(verbose), tls_(std::move(tls)) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void Listener::run() {
  asio::dispatch(acceptor_.get_executor(), beast::bind_front_handler(&Listener::do_accept, this->shared_from_this()));
}

void Listener::do_accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, this->shared_from_this()));
}

void Listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    std::cerr << "tailgate-mock: accept: " << ec.message() << "\n";
    retry_timer_.expires_after(std::chrono::milliseconds(10));
    retry_timer_.async_wait([self = this->shared_from_this()](boost::system::error_code) { self->do_accept(); });
    return;
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (tls_)
    std::make_shared<Session<beast::ssl_stream<tcp::socket>>>(state_, verbose_, std::move(socket), *tls_)->run();
  else
    std::make_shared<Session<tcp::socket>>(state_, verbose_, std::move(socket))->run();
  do_accept();
}

}  // namespace tailgate::mock

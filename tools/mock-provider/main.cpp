// tailgate-mock: a fast, scriptable OpenAI-compatible provider for tests and
// benchmarks. See README.md for the knobs and the control API.
#include <algorithm>
#include <csignal>
#include <sys/resource.h>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <rapidjson/document.h>

#include "behaviour.hpp"
#include "server.hpp"
#include "state.hpp"

namespace {

namespace asio = boost::asio;
using tailgate::mock::Settings;

constexpr const char* kUsage = R"(usage: tailgate-mock [options]
  --port N                  listen port (0 = pick a free one)        [8001]
  --host ADDR               listen address                           [127.0.0.1]
  --threads N               io threads                               [1]
  --name NAME               instance name, used in generated text    [mock]
  --model-list a,b          ids served by GET /v1/models             [mock-model]
  --seed N                  random seed                              [random]
  --log-size N              requests kept for /mock/requests         [1000]
  --verbose                 log unexpected I/O errors to stderr
 latency (durations: 50ms, 1.5s, 200us, bare number = ms)
  --ttft D                  time to first token                      [50ms]
  --ttft-dist fixed|uniform|lognormal                                [fixed]
  --ttft-max D              uniform upper bound / lognormal cap      [0]
  --ttft-sigma X            lognormal sigma (median = --ttft)        [0.5]
  --chunk-delay D           delay between streamed chunks            [10ms]
  --chunks N                words per answer                         [8]
  --straggler-prob P        probability a request is a straggler     [0]
  --straggler-mult X        straggler TTFT multiplier                [20]
 faults
  --fail-rate P             probability of an injected error         [0]
  --fail-status N           status of injected errors                [500]
  --fail-delay D            delay before an injected error           [0]
  --retry-after S           Retry-After seconds on injected errors   [off]
  --retry-after-ms N        retry-after-ms on injected errors        [off]
  --reset-before P          probability of closing without response  [0]
  --reset-mid-stream-after K  reset the connection after K chunks    [off]
  --stall                   never answer
  --stall-mid-stream-after K  stop sending after K chunks            [off]
  --headers-at-ttft         streams: hold headers + role chunk until TTFT
  --reset-after-headers     reset the connection right after the response head
  --garbage MODE            non_json|html_error|bad_sse|truncated_chunked|huge_body|no_done [off]
  --garbage-after K         streams: content chunks before the garbage [2]
  --huge-body-mib N         size of the huge_body payload in MiB       [65]
  --error-event-after K     streams: the API's error event instead of content chunk K [off]
 provider APIs
  --api-key KEY             Anthropic: the x-api-key it accepts [any]; Bedrock: the API key
                            accepted as a Bearer token
  --aws-access-key-id ID    Bedrock: verify SigV4 signatures by this key...
  --aws-secret-access-key S ...and secret (403 on a mismatch)
  --aws-session-token T     ...and require this x-amz-security-token
  --google-public-key FILE  Vertex: verify service-account JWTs at POST /token with this PEM key,
                            and require the tokens issued on Vertex paths
  --token-ttl S             Vertex: lifetime of issued access tokens, seconds [3600]
 TLS
  --tls-cert FILE           serve HTTPS with this PEM certificate (chain)
  --tls-key FILE            and this PEM private key
)";

enum class Kind { duration, number, integer, flag, text, list };

struct Knob {
  std::string_view cli;
  const char* key;  // POST /mock/config key
  Kind kind;
};

constexpr Knob kKnobs[] = {
    {"ttft", "ttft_ms", Kind::duration},
    {"ttft-dist", "ttft_dist", Kind::text},
    {"ttft-max", "ttft_max_ms", Kind::duration},
    {"ttft-sigma", "ttft_sigma", Kind::number},
    {"chunk-delay", "chunk_delay_ms", Kind::duration},
    {"chunks", "chunks", Kind::integer},
    {"straggler-prob", "straggler_prob", Kind::number},
    {"straggler-mult", "straggler_mult", Kind::number},
    {"fail-rate", "fail_rate", Kind::number},
    {"fail-status", "fail_status", Kind::integer},
    {"fail-delay", "fail_delay_ms", Kind::duration},
    {"retry-after", "retry_after", Kind::number},
    {"retry-after-ms", "retry_after_ms", Kind::number},
    {"reset-before", "reset_before", Kind::number},
    {"reset-mid-stream-after", "reset_mid_stream_after", Kind::integer},
    {"stall", "stall", Kind::flag},
    {"stall-mid-stream-after", "stall_mid_stream_after", Kind::integer},
    {"headers-at-ttft", "headers_at_ttft", Kind::flag},
    {"reset-after-headers", "reset_after_headers", Kind::flag},
    {"garbage", "garbage", Kind::text},
    {"garbage-after", "garbage_after", Kind::integer},
    {"huge-body-mib", "huge_body_mib", Kind::number},
    {"error-event-after", "error_event_after", Kind::integer},
    {"api-key", "api_key", Kind::text},
    {"model-list", "models", Kind::list},
    {"aws-access-key-id", "aws_access_key_id", Kind::text},
    {"aws-secret-access-key", "aws_secret_access_key", Kind::text},
    {"aws-session-token", "aws_session_token", Kind::text},
    {"google-public-key", "google_public_key", Kind::text},
    {"token-ttl", "token_ttl_s", Kind::number},
};

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "tailgate-mock: " << msg << "\n" << kUsage;
  std::exit(2);
}

bool parse_number(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

bool parse_int(const std::string& s, long long& out) {
  char* end = nullptr;
  out = std::strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0';
}

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 8001;
  int threads = 1;
  std::string name = "mock";
  std::uint64_t seed = std::random_device{}();
  std::size_t log_size = 1000;
  bool verbose = false;
  std::string tls_cert, tls_key;
  Settings settings;
};

Options parse_args(int argc, char** argv) {
  Options o;
  rapidjson::Document patch(rapidjson::kObjectType);
  auto& alloc = patch.GetAllocator();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) die("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const Knob* knob = nullptr;
    for (const auto& k : kKnobs)
      if (k.cli == name) knob = &k;
    static constexpr std::string_view kPlain[] = {"verbose", "host", "name", "port", "threads", "seed", "log-size",
                                                    "tls-cert", "tls-key"};
    if (!knob && std::find(std::begin(kPlain), std::end(kPlain), name) == std::end(kPlain))
      die("unknown option --" + name);
    const bool is_flag = name == "verbose" || (knob && knob->kind == Kind::flag);
    if (!has_value && !is_flag) {
      if (i + 1 >= argc) die("missing value for --" + name);
      value = argv[++i];
      has_value = true;
    }
    double num = 0;
    long long integer = 0;
    if (name == "verbose") {
      o.verbose = true;
    } else if (name == "tls-cert") {
      o.tls_cert = value;
    } else if (name == "tls-key") {
      o.tls_key = value;
    } else if (name == "host") {
      o.host = value;
    } else if (name == "name") {
      if (value.empty()) die("--name must not be empty");
      o.name = value;
    } else if (name == "port") {
      if (!parse_int(value, integer) || integer < 0 || integer > 65535) die("bad --port");
      o.port = static_cast<unsigned short>(integer);
    } else if (name == "threads") {
      if (!parse_int(value, integer) || integer < 1 || integer > 256) die("bad --threads");
      o.threads = static_cast<int>(integer);
    } else if (name == "seed") {
      if (!parse_int(value, integer)) die("bad --seed");
      o.seed = static_cast<std::uint64_t>(integer);
    } else if (name == "log-size") {
      if (!parse_int(value, integer) || integer < 0) die("bad --log-size");
      o.log_size = static_cast<std::size_t>(integer);
    } else if (knob) {
      rapidjson::Value key(knob->key, alloc);
      rapidjson::Value v;
      switch (knob->kind) {
        case Kind::duration: v.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc); break;
        case Kind::text: v.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc); break;
        case Kind::number:
          if (!parse_number(value, num)) die("bad value for --" + name);
          v.SetDouble(num);
          break;
        case Kind::integer:
          if (!parse_int(value, integer)) die("bad value for --" + name);
          v.SetInt64(integer);
          break;
        case Kind::flag: v.SetBool(!has_value || value == "1" || value == "true" || value == "yes"); break;
        case Kind::list: {
          v.SetArray();
          std::size_t from = 0;
          while (from <= value.size()) {
            std::size_t comma = value.find(',', from);
            if (comma == std::string::npos) comma = value.size();
            if (comma > from) v.PushBack(rapidjson::Value(value.substr(from, comma - from).c_str(), alloc), alloc);
            from = comma + 1;
          }
          break;
        }
      }
      patch.RemoveMember(knob->key);
      patch.AddMember(key, v, alloc);
    } else {
      die("unknown option --" + name);
    }
  }
  if (auto err = tailgate::mock::merge_settings(o.settings, patch); !err.empty()) die(err);
  if (o.tls_cert.empty() != o.tls_key.empty()) die("--tls-cert and --tls-key go together");
  return o;
}

// Benchmarks hold thousands of connections: lift the soft fd limit to the hard one.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  raise_fd_limit();
  try {
    asio::io_context ioc(opt.threads);
    std::string host = opt.host == "localhost" ? "127.0.0.1" : opt.host;
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(host), opt.port);
    auto state = std::make_shared<tailgate::mock::State>(opt.name, opt.settings, opt.seed, opt.log_size);
    std::shared_ptr<asio::ssl::context> tls;
    if (!opt.tls_cert.empty()) {
      tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
      tls->use_certificate_chain_file(opt.tls_cert);
      tls->use_private_key_file(opt.tls_key, asio::ssl::context::pem);
    }
    auto listener = std::make_shared<tailgate::mock::Listener>(ioc, endpoint, state, opt.verbose, tls);
    listener->run();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&ioc](const boost::system::error_code&, int) { ioc.stop(); });
    std::signal(SIGPIPE, SIG_IGN);

    const auto bound = listener->local_endpoint();
    std::cout << "listening on " << bound.address().to_string() << ":" << bound.port() << std::endl;

    std::vector<std::thread> threads;
    for (int i = 1; i < opt.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
  } catch (const std::exception& e) {
    std::cerr << "tailgate-mock: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

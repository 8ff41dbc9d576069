// The running gateway: the client front end (server/frontend/), Asio I/O
// threads for upstream calls, the router with its plugin chain.
//
// Threads: a front-end pool thread reads each request (parse, auth, route);
// then the response is handed out (Request::relay) and written from the Asio
// threads, which also run all upstream I/O, timers and plan execution. Idle
// keep-alive connections wait off the pool as well. No pool thread waits for
// an upstream or a slow client.
#pragma once

#include "config/config.hpp"
#include "control/control_plane.hpp"
#include "control/response_store.hpp"
#include "control/store.hpp"

#include <memory>
#include <string>

namespace tailgate::server {

class Gateway {
public:
    // Loads plugins and prepares everything; throws on a bad config/plugin.
    // `store` holds the admin changes re-applied over `cfg` (control/store.hpp).
    // `responses` keeps the Responses API's stored responses (null: in memory).
    Gateway(std::shared_ptr<const config::Config> cfg, control::StorePtr store,
            control::ResponseStorePtr responses = nullptr);
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // Binds and starts serving; returns the bound port.
    int start(const std::string& host, int port);
    void stop();

    // Graceful shutdown (see server/drain.hpp): refuse new API requests and
    // report not-ready; in_flight() counts the API requests still running;
    // abort_in_flight() ends them (SSE error event / 503) and returns how many.
    void begin_drain();
    size_t in_flight() const;
    size_t abort_in_flight();

    // The generation new requests take now (it stays valid while held).
    control::GenerationPtr generation() const;
    // Re-reads the config file (SIGHUP); the running config stays when it is invalid.
    control::Outcome reload(const std::string& who);

    struct Impl;  // defined in gateway_impl.hpp; public so its request handlers can name it

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace tailgate::server

// A client connection out of the Poco pool (its response written by a relay,
// or idle and parked), and the way back to the pool. Front-end internal.
#pragma once

#include <Poco/Net/SocketAddress.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace tailgate::server::frontend {

// A client connection taken out of Poco after its request was read (the
// response is then written on the Asio side, where no thread waits for it).
struct DetachedClient {
    int fd = -1;           // owned: whoever holds it closes it or resumes it
    std::string buffered;  // bytes read past this request (a pipelined next one)
    int requests_left = -1;  // keep-alive requests still allowed; < 0: unlimited
    // Both ends' addresses, once known (Poco asks for them on every request).
    std::optional<Poco::Net::SocketAddress> local, peer;
};

// Gives detached connections back to Poco's pool once their response is written.
// Shared with the relays, so it stays valid (and refuses) after the front end stopped.
class ConnectionResumer {
public:
    virtual ~ConnectionResumer() = default;
    // `finish` runs first on a pool thread (bookkeeping that may block: logs).
    // Then, with keep_alive, the connection waits for its next request as usual;
    // without, it is closed. After stop() the fd is closed and `finish` runs here.
    virtual void resume(DetachedClient client, bool keep_alive, std::function<void()> finish) = 0;
};

// Watches an idle keep-alive connection off the pool (for at most the given
// time, then closes it) and resumes it when its next request arrives.
using IdleParker = std::function<void(DetachedClient, std::chrono::milliseconds)>;

}  // namespace tailgate::server::frontend

// Async HTTP/1.1 server (Boost.Beast on Asio) of the mock provider.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tailgate::mock {

class State;

// Accepts connections and runs one session per connection.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Binds and listens; throws boost::system::system_error on failure. With `tls`
  // every connection is HTTPS (handshake first, no plain HTTP on that port).
  Listener(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint,
           std::shared_ptr<State> state, bool verbose, std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void run();

 private:
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;  // backs off after accept errors (e.g. EMFILE)
  std::shared_ptr<State> state_;
  bool verbose_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace tailgate::mock

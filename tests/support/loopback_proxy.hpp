// A loopback HTTP forward proxy for the mca-oauth tests: lets them check that token
// requests honour a configured proxy (plain HTTP and CONNECT tunnels for HTTPS),
// with or without proxy authentication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mca::test {

// Binds 127.0.0.1 on an ephemeral port. Every method is thread-safe while serving.
//
//   POST http://127.0.0.1:N/path HTTP/1.1   absolute-form: sent on to the origin with
//                                           "Connection: close" and without hop-by-hop and
//                                           Proxy-* headers; the reply is relayed with
//                                           "Connection: close", then the client connection closes.
//   CONNECT 127.0.0.1:N HTTP/1.1            "200 Connection established", then bytes both ways.
//
// Only ever connects to 127.0.0.1: the host must be 127.0.0.1 or localhost (never
// resolved), anything else gets 403. Other refusals: 400 (malformed head, origin-form or
// non-http target, chunked request body), 407 (see requireBasicAuth), 502 (the origin
// refused the connection, or closed it or sent a malformed head before any reply).
// Each client connection carries one request or tunnel.
class LoopbackProxy {
  public:
    LoopbackProxy();   // binds and starts serving before returning; throws on failure
    ~LoopbackProxy();  // closes every connection and tunnel, joins every thread, returns promptly
    LoopbackProxy(const LoopbackProxy&) = delete;
    LoopbackProxy& operator=(const LoopbackProxy&) = delete;

    std::uint16_t port() const;
    std::string url() const;  // "http://127.0.0.1:PORT"

    // From now on, requests without "Proxy-Authorization: Basic base64(user:password)" (exact
    // bytes, no form-decoding) get 407 with Proxy-Authenticate: Basic realm="loopback-proxy".
    void requireBasicAuth(std::string user, std::string password);

    std::size_t requestsForwarded() const;  // absolute-form requests sent on to the origin
    std::size_t tunnelsOpened() const;      // CONNECTs answered 200
    // The request line of every request head received, refused ones included, in arrival
    // order, e.g. "CONNECT 127.0.0.1:1234 HTTP/1.1". Counters and lines are updated before
    // the client gets the answer.
    std::vector<std::string> requestLines() const;

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mca::test

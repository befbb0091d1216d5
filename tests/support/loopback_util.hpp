// Internals shared by McaTestServer and LoopbackProxy; not part of the test API.
#pragma once

#include "mca_test_server.hpp"  // RecordedRequest

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mca::test::detail {

[[noreturn]] void throwSystemError(const std::string& what);

class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }

  private:
    int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Text

// Not std::tolower: header names must compare the same whatever the process locale.
char asciiLower(char c);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string_view trimWhitespace(std::string_view text);
// True when the comma-separated header value lists `token` (e.g. Connection: keep-alive, close).
bool listsToken(std::string_view headerValue, std::string_view token);

enum class Base64 {
    Standard,  // "+/" with "=" padding, as in Basic auth
    Url,       // "-_" unpadded, as in JWS
};
std::string base64UrlEncode(std::string_view bytes);
// nullopt on any invalid input.
std::optional<std::string> base64Decode(std::string_view text, Base64 variant);

// Request line and header fields of an HTTP/1.x request head (without the final CRLFCRLF);
// nullopt when malformed. The body is left empty.
std::optional<RecordedRequest> parseRequestHead(std::string_view head);

// ---------------------------------------------------------------------------
// Sockets

// Level-triggered "the server is stopping" flag that poll() can watch next to sockets.
class StopSignal {
  public:
    StopSignal();
    // The byte is never read, so the pipe stays readable for every poller.
    void raise() const noexcept;
    int pollFd() const noexcept { return readEnd_.get(); }

    // Polls `fds` (at most 3; -1 = no timeout); false once stopping, else their revents are
    // set (all 0 on timeout).
    bool wait(pollfd* fds, std::size_t count, int timeoutMs = -1) const noexcept;
    // Blocks until `fd` is readable or hung up; false once the server is stopping.
    bool waitReadable(int fd) const noexcept;
    // False (early) once the server is stopping.
    bool sleepFor(std::chrono::milliseconds duration) const noexcept;

  private:
    UniqueFd readEnd_, writeEnd_;
};

UniqueFd listenOnLoopback(std::uint16_t port);  // 127.0.0.1:port (0 = ephemeral), blocking
std::uint16_t boundPort(int fd);

}  // namespace mca::test::detail

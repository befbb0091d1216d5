#include "loopback_proxy.hpp"

#include "loopback_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

namespace mca::test {
namespace {

using namespace std::chrono_literals;
using namespace detail;

constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
constexpr std::size_t kMaxBufferedBytes = 256 * 1024;  // per direction, before reading pauses
constexpr int kLingerMs = 2000;

// ---------------------------------------------------------------------------
// Sockets: non-blocking, and every wait also watches the proxy's stop signal, so no
// thread can outlive the destructor's stop_.raise() by more than a poll wake-up.

class Socket {
  public:
    Socket(UniqueFd fd, const StopSignal& stop) : fd_(std::move(fd)), stop_(stop) {}

    int fd() const noexcept { return fd_.get(); }

    // Appends what one recv() gets; false on end of input, error or stop.
    bool readSome(std::string& into) {
        char buffer[16 * 1024];
        while (true) {
            const ssize_t count = ::recv(fd_.get(), buffer, sizeof buffer, 0);
            if (count > 0) {
                into.append(buffer, static_cast<std::size_t>(count));
                return true;
            }
            if (count == 0 || (errno != EAGAIN && errno != EINTR)) return false;
            if (!stop_.waitReadable(fd_.get())) return false;
        }
    }

    bool writeAll(std::string_view bytes) {
        while (!bytes.empty()) {
            const std::optional<std::size_t> written = sendSome(bytes);
            if (!written) return false;
            bytes.remove_prefix(*written);
            pollfd writable{fd_.get(), POLLOUT, 0};
            if (*written == 0 && !stop_.wait(&writable, 1)) return false;
        }
        return true;
    }

    // Bytes sent now (0 when the socket buffer is full); nullopt on error.
    std::optional<std::size_t> sendSome(std::string_view bytes) {
        while (true) {
            const ssize_t count = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (count >= 0) return static_cast<std::size_t>(count);
            if (errno == EAGAIN) return 0;
            if (errno != EINTR) return std::nullopt;
        }
    }

    void shutdownWrite() noexcept { ::shutdown(fd_.get(), SHUT_WR); }

    // Lingering close: unread request bytes would make close() send a RST, which can
    // destroy a refusal still in flight, so read until the peer closes (bounded).
    void finishAfterRefusal() {
        shutdownWrite();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLingerMs);
        while (true) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd readable{fd_.get(), POLLIN, 0};
            if (left.count() <= 0 || !stop_.wait(&readable, 1, static_cast<int>(left.count())) ||
                readable.revents == 0) {
                return;
            }
            char discarded[4096];
            const ssize_t count = ::recv(fd_.get(), discarded, sizeof discarded, 0);
            if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) return;
        }
    }

  private:
    UniqueFd fd_;
    const StopSignal& stop_;
};

// A connection to 127.0.0.1:port; an empty fd when refused or stopping.
UniqueFd connectToLoopback(std::uint16_t port, const StopSignal& stop) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) return fd;
    if (errno != EINPROGRESS && errno != EINTR) return {};
    // Waited for rather than blocked on: a listener with a full backlog never completes it.
    pollfd writable{fd.get(), POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (!stop.wait(&writable, 1) || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
        return {};
    }
    return fd;
}

// ---------------------------------------------------------------------------
// Messages

std::string refusal(int status, std::string_view reason, std::string_view message, std::string_view headers = {}) {
    const std::string body = std::string(message) + "\n";
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n" + std::string(headers) + "\r\n" + body;
}

struct Authority {
    std::string host;
    std::uint16_t port = 0;
};

// "host[:port]"; nullopt when malformed, or without a port and defaultPort == 0.
std::optional<Authority> parseAuthority(std::string_view text, std::uint16_t defaultPort) {
    if (text.empty() || text.find_first_of("@/?# \t") != std::string_view::npos) return std::nullopt;
    const std::size_t colon = text.rfind(':');
    const bool ipv6Literal = text.front() == '[';
    const bool hasPort = colon != std::string_view::npos && (!ipv6Literal || text.find(']') < colon);
    Authority authority{std::string(text.substr(0, hasPort ? colon : text.size())), defaultPort};
    if (hasPort) {
        const std::string_view digits = text.substr(colon + 1);
        const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), authority.port);
        if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    }
    if (authority.host.empty() || authority.port == 0) return std::nullopt;
    return authority;
}

// The only hosts it connects to (never resolved: both mean 127.0.0.1).
bool isLoopbackHost(std::string_view host) { return host == "127.0.0.1" || equalsIgnoreCase(host, "localhost"); }

struct AbsoluteTarget {
    std::string authority;  // as sent, for a missing Host header
    Authority origin;
    std::string path;  // origin-form: "/path?query"
};

// "http://authority[/path][?query]"; nullopt when malformed or another scheme.
std::optional<AbsoluteTarget> parseAbsoluteTarget(std::string_view target) {
    constexpr std::string_view kScheme = "http://";
    if (target.size() < kScheme.size() || !equalsIgnoreCase(target.substr(0, kScheme.size()), kScheme)) {
        return std::nullopt;
    }
    target.remove_prefix(kScheme.size());
    const std::size_t authorityEnd = std::min(target.find_first_of("/?#"), target.size());
    AbsoluteTarget parsed;
    parsed.authority = target.substr(0, authorityEnd);
    const std::optional<Authority> origin = parseAuthority(parsed.authority, 80);
    if (!origin) return std::nullopt;
    parsed.origin = *origin;
    const std::string_view rest = target.substr(authorityEnd, target.find('#') - authorityEnd);
    parsed.path = rest.empty() || rest.front() != '/' ? "/" + std::string(rest) : std::string(rest);
    return parsed;
}

bool isHopByHopHeader(std::string_view name) {
    for (const std::string_view hopByHop :
         {"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer",
          "Transfer-Encoding", "Upgrade", "Expect"}) {
        if (equalsIgnoreCase(name, hopByHop)) return true;
    }
    return false;
}

// The request as the origin gets it: origin-form target, one exchange per connection.
std::string originRequest(const RecordedRequest& request, const AbsoluteTarget& target, std::string_view body) {
    const std::string connectionOptions = request.header("Connection") + "," + request.header("Proxy-Connection");
    std::string head = request.method + " " + target.path + " HTTP/1.1\r\n";
    bool hasHost = false;
    for (const auto& [name, value] : request.headers) {
        if (isHopByHopHeader(name) || listsToken(connectionOptions, name)) continue;
        hasHost = hasHost || equalsIgnoreCase(name, "Host");
        head += name + ": " + value + "\r\n";
    }
    if (!hasHost) head += "Host: " + target.authority + "\r\n";
    head += "Via: 1.1 loopback-proxy\r\nConnection: close\r\n\r\n";
    return head.append(body);
}

// Passes the origin's reply on, rewriting the final response head to "Connection: close"
// (the proxy closes the client connection after each exchange). Interim 1xx heads pass as they are.
class ResponseRelay {
  public:
    // Takes bytes from the origin and appends what may go on to the client; false when a head is malformed.
    bool feed(std::string_view bytes, std::string& toClient) {
        if (inBody_) {
            toClient.append(bytes);
            return true;
        }
        pending_.append(bytes);
        while (!inBody_) {
            const std::size_t headEnd = pending_.find("\r\n\r\n");
            if (headEnd == std::string::npos) return pending_.size() <= kMaxHeadBytes;
            const std::string_view head = std::string_view(pending_).substr(0, headEnd);
            const std::optional<int> status = statusOf(head);
            if (!status) return false;
            if (*status >= 200 || *status == 101) {
                toClient += rewriteFinalHead(head);
                inBody_ = true;
            } else {
                toClient.append(head).append("\r\n\r\n");
            }
            started_ = true;
            pending_.erase(0, headEnd + 4);
        }
        toClient += pending_;
        pending_.clear();
        return true;
    }

    bool started() const noexcept { return started_; }

  private:
    static std::optional<int> statusOf(std::string_view head) {
        // "HTTP/1.x NNN[ reason]"
        if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ' ||
            (head.size() > 12 && head[12] != ' ' && head[12] != '\r')) {
            return std::nullopt;
        }
        int status = 0;
        const auto [end, error] = std::from_chars(head.data() + 9, head.data() + 12, status);
        if (error != std::errc() || end != head.data() + 12 || status < 100) return std::nullopt;
        return status;
    }

    static std::string rewriteFinalHead(std::string_view head) {
        std::string rewritten;
        bool statusLine = true;
        while (!head.empty()) {
            const std::size_t lineEnd = std::min(head.find("\r\n"), head.size());
            const std::string_view line = head.substr(0, lineEnd);
            head.remove_prefix(std::min(lineEnd + 2, head.size()));
            const std::string_view name = trimWhitespace(line.substr(0, line.find(':')));
            if (statusLine || !(equalsIgnoreCase(name, "Connection") || equalsIgnoreCase(name, "Keep-Alive") ||
                                equalsIgnoreCase(name, "Proxy-Connection"))) {
                rewritten.append(line).append("\r\n");
            }
            statusLine = false;
        }
        return rewritten + "Connection: close\r\n\r\n";
    }

    std::string pending_;
    bool inBody_ = false;
    bool started_ = false;
};

enum class PumpEnd {
    Finished,       // every byte delivered, both ways (tunnel) or the whole reply (relay)
    Broken,         // a socket failed, the client hung up, or the proxy is stopping
    NoReply,        // relay only: the origin closed before a complete response head
    MalformedHead,  // relay only: the origin's response head is not HTTP/1.x
};

// Moves bytes between the client and the origin. Without a relay it is a tunnel: both
// ways, each end of input passed on as a half-close. With one, `toOrigin` (the request)
// goes to the origin and the origin's bytes go to the client through the relay; nothing
// more is read from the client, but its hanging up ends the exchange (the origin then sees
// the proxy hang up too, as it would have seen the client).
PumpEnd pump(Socket& client, Socket& origin, std::string toOrigin, ResponseRelay* relay, const StopSignal& stop) {
    struct Direction {
        Socket& from;
        Socket& to;
        std::string pending;  // read from `from`, not yet written to `to`
        bool inputEnded = false;
        bool halfClosed = false;
    };
    Direction up{client, origin, std::move(toOrigin), relay != nullptr};
    Direction down{origin, client, {}};

    std::string received;
    while (true) {
        for (Direction* direction : {&up, &down}) {
            if (direction->inputEnded && direction->pending.empty() && !direction->halfClosed) {
                if (relay != nullptr && direction == &down) return PumpEnd::Finished;
                // A relay sent the whole request: no half-close, which a server may read as the
                // client giving up (a Hang reply would end), where a real client would wait.
                if (relay == nullptr) direction->to.shutdownWrite();
                direction->halfClosed = true;
            }
        }
        if (up.halfClosed && down.halfClosed) return PumpEnd::Finished;

        const auto events = [&](const Direction& reading, const Direction& writing, bool watchHangUp) {
            short wanted = 0;
            if (!reading.inputEnded && reading.pending.size() < kMaxBufferedBytes) wanted |= POLLIN;
            if (!writing.pending.empty()) wanted |= POLLOUT;
            if (watchHangUp) wanted |= POLLRDHUP;
            return wanted;
        };
        pollfd fds[2] = {{client.fd(), events(up, down, relay != nullptr), 0},
                         {origin.fd(), events(down, up, false), 0}};
        if (!stop.wait(fds, 2)) return PumpEnd::Broken;

        for (int side = 0; side < 2; ++side) {
            Direction& reading = side == 0 ? up : down;
            Direction& writing = side == 0 ? down : up;
            const short revents = fds[side].revents;
            if ((revents & POLLOUT) != 0) {
                const std::optional<std::size_t> written = writing.to.sendSome(writing.pending);
                if (!written) return PumpEnd::Broken;
                writing.pending.erase(0, *written);
            }
            if (side == 0 && relay != nullptr) {
                if ((revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return PumpEnd::Broken;
                continue;
            }
            if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            if ((fds[side].events & POLLIN) == 0) return PumpEnd::Broken;  // failed while we were not reading
            // A reset reads as an end of input, so an origin that resets before replying gets a 502 too.
            received.clear();
            if (!reading.from.readSome(received)) {
                if (relay != nullptr && !relay->started()) return PumpEnd::NoReply;
                reading.inputEnded = true;
            } else if (relay == nullptr) {
                reading.pending += received;
            } else if (!relay->feed(received, reading.pending)) {
                return relay->started() ? PumpEnd::Broken : PumpEnd::MalformedHead;
            }
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------

class LoopbackProxy::Impl {
  public:
    Impl() : listenFd_(listenOnLoopback(0)), port_(boundPort(listenFd_.get())) {
        // Non-blocking, so a connection reset between poll() and accept() cannot block the loop.
        if (::fcntl(listenFd_.get(), F_SETFL, O_NONBLOCK) != 0) throwSystemError("fcntl O_NONBLOCK");
        acceptThread_ = std::thread([this] { acceptLoop(); });
    }

    ~Impl() {
        stop_.raise();
        acceptThread_.join();
        for (const auto& connection : connections_) connection->thread.join();
    }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    void requireBasicAuth(std::string user, const std::string& password) {
        const std::lock_guard lock(mutex_);
        credentials_ = std::move(user) + ":" + password;
    }
    std::size_t requestsForwarded() const { return requestsForwarded_; }
    std::size_t tunnelsOpened() const { return tunnelsOpened_; }
    std::vector<std::string> requestLines() const {
        const std::lock_guard lock(mutex_);
        return requestLines_;
    }

  private:
    struct Connection {
        std::thread thread;
        std::atomic<bool> finished{false};
    };

    void acceptLoop() {
        while (stop_.waitReadable(listenFd_.get())) {
            UniqueFd accepted(::accept4(listenFd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!accepted) {
                // Out of descriptors or memory: back off rather than spin.
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) stop_.sleepFor(10ms);
                continue;
            }
            reapFinishedConnections();
            auto& connection = *connections_.emplace_back(std::make_unique<Connection>());
            try {
                connection.thread = std::thread([this, &connection, fd = std::move(accepted)]() mutable {
                    serveConnection(connection, std::move(fd));
                });
            } catch (const std::system_error&) {
                connections_.pop_back();  // out of threads: refuse this connection
            }
        }
    }

    void reapFinishedConnections() {
        for (auto it = connections_.begin(); it != connections_.end();) {
            if ((*it)->finished) {
                (*it)->thread.join();
                it = connections_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void serveConnection(Connection& connection, UniqueFd fd) {
        try {
            Socket client(std::move(fd), stop_);
            serveClient(client);
        } catch (const std::exception& error) {
            // Escaping the thread would terminate the whole test binary.
            std::fprintf(stderr, "loopback-proxy: %s\n", error.what());
        }
        connection.finished = true;
    }

    void serveClient(Socket& client) {
        std::string unread;
        std::size_t headEnd;
        while ((headEnd = unread.find("\r\n\r\n")) == std::string::npos) {
            if (unread.size() > kMaxHeadBytes) {
                return refuse(client, 431, "Request Header Fields Too Large", "head too large");
            }
            if (!client.readSome(unread)) return;
        }
        {
            const std::lock_guard lock(mutex_);
            requestLines_.push_back(unread.substr(0, unread.find("\r\n")));
        }
        const std::optional<RecordedRequest> request = parseRequestHead(std::string_view(unread).substr(0, headEnd));
        unread.erase(0, headEnd + 4);
        if (!request) return refuse(client, 400, "Bad Request", "malformed request head");
        if (!authorized(*request)) {
            return refuse(client, 407, "Proxy Authentication Required", "proxy authentication required",
                          "Proxy-Authenticate: Basic realm=\"loopback-proxy\"\r\n");
        }
        if (request->method == "CONNECT") return tunnel(client, *request, std::move(unread));
        forward(client, *request, std::move(unread));
    }

    bool authorized(const RecordedRequest& request) const {
        std::optional<std::string> expected;
        {
            const std::lock_guard lock(mutex_);
            expected = credentials_;
        }
        if (!expected) return true;
        const std::string header = request.header("Proxy-Authorization");
        const std::string_view value = trimWhitespace(header);
        const std::size_t space = value.find(' ');
        if (space == std::string_view::npos || !equalsIgnoreCase(value.substr(0, space), "Basic")) return false;
        const std::optional<std::string> decoded =
            base64Decode(trimWhitespace(value.substr(space + 1)), Base64::Standard);
        return decoded == expected;
    }

    void tunnel(Socket& client, const RecordedRequest& request, std::string clientBytes) {
        const std::optional<Authority> authority = parseAuthority(request.target, 0);
        if (!authority) return refuse(client, 400, "Bad Request", "CONNECT needs host:port");
        if (!isLoopbackHost(authority->host)) return refuse(client, 403, "Forbidden", "only 127.0.0.1 is reachable");
        Socket origin(connectToLoopback(authority->port, stop_), stop_);
        if (origin.fd() < 0) return refuse(client, 502, "Bad Gateway", "cannot connect to the origin");
        ++tunnelsOpened_;
        if (!client.writeAll("HTTP/1.1 200 Connection established\r\n\r\n")) return;
        pump(client, origin, std::move(clientBytes), nullptr, stop_);
    }

    void forward(Socket& client, const RecordedRequest& request, std::string unread) {
        const std::optional<AbsoluteTarget> target = parseAbsoluteTarget(request.target);
        if (!target) return refuse(client, 400, "Bad Request", "target must be an absolute http:// URL");
        if (!isLoopbackHost(target->origin.host)) {
            return refuse(client, 403, "Forbidden", "only 127.0.0.1 is reachable");
        }
        if (!request.header("Transfer-Encoding").empty()) {
            return refuse(client, 411, "Length Required", "only Content-Length request bodies are supported");
        }
        std::size_t bodySize = 0;
        const std::string contentLength = request.header("Content-Length");
        if (!contentLength.empty()) {
            const auto [end, error] =
                std::from_chars(contentLength.data(), contentLength.data() + contentLength.size(), bodySize);
            if (error != std::errc() || end != contentLength.data() + contentLength.size()) {
                return refuse(client, 400, "Bad Request", "malformed Content-Length");
            }
        }
        if (bodySize > kMaxBodyBytes) return refuse(client, 413, "Content Too Large", "request body too large");
        if (unread.size() < bodySize && equalsIgnoreCase(request.header("Expect"), "100-continue") &&
            !client.writeAll("HTTP/1.1 100 Continue\r\n\r\n")) {
            return;
        }
        while (unread.size() < bodySize) {
            if (!client.readSome(unread)) return;
        }

        Socket origin(connectToLoopback(target->origin.port, stop_), stop_);
        if (origin.fd() < 0) return refuse(client, 502, "Bad Gateway", "cannot connect to the origin");
        ++requestsForwarded_;
        ResponseRelay relay;
        std::string originBound = originRequest(request, *target, std::string_view(unread).substr(0, bodySize));
        const PumpEnd end = pump(client, origin, std::move(originBound), &relay, stop_);
        if (end == PumpEnd::NoReply) return refuse(client, 502, "Bad Gateway", "the origin closed without a reply");
        if (end == PumpEnd::MalformedHead) return refuse(client, 502, "Bad Gateway", "malformed reply from the origin");
    }

    void refuse(Socket& client, int status, std::string_view reason, std::string_view message,
                std::string_view headers = {}) {
        if (client.writeAll(refusal(status, reason, message, headers))) client.finishAfterRefusal();
    }

    const StopSignal stop_;
    UniqueFd listenFd_;
    const std::uint16_t port_;
    std::thread acceptThread_;
    std::list<std::unique_ptr<Connection>> connections_;  // used by the accept thread, then by the destructor
    std::atomic<std::size_t> requestsForwarded_{0};
    std::atomic<std::size_t> tunnelsOpened_{0};

    mutable std::mutex mutex_;                // guards everything below
    std::optional<std::string> credentials_;  // "user:password" once requireBasicAuth was called
    std::vector<std::string> requestLines_;
};

LoopbackProxy::LoopbackProxy() : impl_(std::make_unique<Impl>()) {}
LoopbackProxy::~LoopbackProxy() = default;

std::uint16_t LoopbackProxy::port() const { return impl_->port(); }
std::string LoopbackProxy::url() const { return impl_->url(); }
void LoopbackProxy::requireBasicAuth(std::string user, std::string password) {
    impl_->requireBasicAuth(std::move(user), std::move(password));
}
std::size_t LoopbackProxy::requestsForwarded() const { return impl_->requestsForwarded(); }
std::size_t LoopbackProxy::tunnelsOpened() const { return impl_->tunnelsOpened(); }
std::vector<std::string> LoopbackProxy::requestLines() const { return impl_->requestLines(); }

}  // namespace mca::test

#include "loopback_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>

namespace mca::test::detail {
namespace {

constexpr int kListenBacklog = 4096;  // tests open ~1000 connections at once

const char* base64Alphabet(Base64 variant) {
    return variant == Base64::Standard ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                                       : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

}  // namespace

[[noreturn]] void throwSystemError(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// ---------------------------------------------------------------------------
// Text

char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return asciiLower(x) == asciiLower(y); });
}

std::string_view trimWhitespace(std::string_view text) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t'; };
    while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
    return text;
}

bool listsToken(std::string_view headerValue, std::string_view token) {
    while (true) {
        const std::size_t comma = headerValue.find(',');
        if (equalsIgnoreCase(trimWhitespace(headerValue.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) return false;
        headerValue.remove_prefix(comma + 1);
    }
}

std::string base64UrlEncode(std::string_view bytes) {
    const char* alphabet = base64Alphabet(Base64::Url);
    std::string encoded;
    encoded.reserve((bytes.size() + 2) / 3 * 4);
    std::uint32_t bitBuffer = 0;
    int bitCount = 0;
    for (const char byte : bytes) {
        bitBuffer = ((bitBuffer << 8) | static_cast<unsigned char>(byte)) & 0xFFFF;
        bitCount += 8;
        while (bitCount >= 6) {
            bitCount -= 6;
            encoded.push_back(alphabet[(bitBuffer >> bitCount) & 0x3F]);
        }
    }
    if (bitCount > 0) encoded.push_back(alphabet[(bitBuffer << (6 - bitCount)) & 0x3F]);
    return encoded;
}

std::optional<std::string> base64Decode(std::string_view text, Base64 variant) {
    const char* alphabet = base64Alphabet(variant);
    if (variant == Base64::Standard) {
        if (text.size() % 4 != 0) return std::nullopt;
        for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i) text.remove_suffix(1);
    }
    std::string decoded;
    decoded.reserve(text.size() * 3 / 4);
    std::uint32_t bitBuffer = 0;
    int bitCount = 0;
    for (const char c : text) {
        const char* position = c == '\0' ? nullptr : std::strchr(alphabet, c);
        if (position == nullptr) return std::nullopt;
        bitBuffer = ((bitBuffer << 6) | static_cast<std::uint32_t>(position - alphabet)) & 0xFFFF;
        bitCount += 6;
        if (bitCount >= 8) {
            bitCount -= 8;
            decoded.push_back(static_cast<char>((bitBuffer >> bitCount) & 0xFF));
        }
    }
    if (bitCount >= 6) return std::nullopt;  // a lone trailing character cannot encode a byte
    return decoded;
}

std::optional<RecordedRequest> parseRequestHead(std::string_view head) {
    const std::size_t requestLineEnd = head.find("\r\n");
    const std::string_view requestLine = head.substr(0, requestLineEnd);
    const std::size_t firstSpace = requestLine.find(' ');
    const std::size_t secondSpace = requestLine.find(' ', firstSpace + 1);
    if (firstSpace == std::string_view::npos || secondSpace == std::string_view::npos ||
        requestLine.find(' ', secondSpace + 1) != std::string_view::npos || firstSpace == 0 ||
        secondSpace == firstSpace + 1) {
        return std::nullopt;
    }
    RecordedRequest request;
    request.method = requestLine.substr(0, firstSpace);
    request.target = requestLine.substr(firstSpace + 1, secondSpace - firstSpace - 1);
    request.version = requestLine.substr(secondSpace + 1);
    if (request.version != "HTTP/1.1" && request.version != "HTTP/1.0") return std::nullopt;

    std::string_view rest =
        requestLineEnd == std::string_view::npos ? std::string_view() : head.substr(requestLineEnd + 2);
    while (!rest.empty()) {
        const std::size_t lineEnd = rest.find("\r\n");
        const std::string_view line = rest.substr(0, lineEnd);
        rest = lineEnd == std::string_view::npos ? std::string_view() : rest.substr(lineEnd + 2);
        const std::size_t colon = line.find(':');
        // Rejects obsolete line folding (a leading space) and whitespace before the colon.
        if (colon == std::string_view::npos || colon == 0 ||
            line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
            return std::nullopt;
        }
        request.headers.emplace_back(line.substr(0, colon), trimWhitespace(line.substr(colon + 1)));
    }
    return request;
}

// ---------------------------------------------------------------------------
// Sockets

StopSignal::StopSignal() {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) throwSystemError("pipe2");
    readEnd_ = UniqueFd(ends[0]);
    writeEnd_ = UniqueFd(ends[1]);
}

void StopSignal::raise() const noexcept {
    while (::write(writeEnd_.get(), "x", 1) < 0 && errno == EINTR) {
    }
}

bool StopSignal::wait(pollfd* fds, std::size_t count, int timeoutMs) const noexcept {
    std::array<pollfd, 4> all{};
    if (count >= all.size()) return false;
    all[0] = {readEnd_.get(), POLLIN, 0};
    std::copy_n(fds, count, all.begin() + 1);
    while (::poll(all.data(), count + 1, timeoutMs) < 0) {
        if (errno != EINTR) return false;
    }
    std::copy_n(all.begin() + 1, count, fds);
    return all[0].revents == 0;
}

bool StopSignal::waitReadable(int fd) const noexcept {
    pollfd watched{fd, POLLIN, 0};
    return wait(&watched, 1);
}

bool StopSignal::sleepFor(std::chrono::milliseconds duration) const noexcept {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    pollfd stop{readEnd_.get(), POLLIN, 0};
    while (true) {
        const auto remaining =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0) return true;
        if (::poll(&stop, 1, static_cast<int>(std::min<long long>(remaining.count(), INT_MAX))) > 0) return false;
    }
}

UniqueFd listenOnLoopback(std::uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throwSystemError("socket");
    const int on = 1;
    // Lets a test restart a server on the port of one it just stopped (TIME_WAIT).
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        throwSystemError("bind 127.0.0.1:" + std::to_string(port));
    }
    if (::listen(fd.get(), kListenBacklog) != 0) throwSystemError("listen");
    return fd;
}

std::uint16_t boundPort(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) throwSystemError("getsockname");
    return ntohs(address.sin_port);
}

}  // namespace mca::test::detail

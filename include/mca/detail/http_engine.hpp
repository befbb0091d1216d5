#pragma once

// The engine: one background thread per AuthClient driving a libcurl multi handle. Every token
// request of the client runs on it concurrently, over connections the multi handle keeps alive
// and reuses. Requests are submitted from any thread; each easy handle and every transfer is
// owned by the engine thread alone. Retries (network errors, 5xx, 429) wait on the engine's own
// timer queue, so no thread sleeps per request. Connections per host are capped; a request
// waiting for a free connection still ends at its deadline. A resolver that never answers costs
// only its own request: libcurl leaves its thread behind (CURLOPT_QUICK_EXIT) instead of joining
// it on the engine thread. Completions that throw are dropped; stop() from a completion and
// every call in a fork() child are safe (see stop()).

#include "../error.hpp"
#include "../version.hpp"
#include "fork_guard.hpp"
#include "handles.hpp"
#include "proxy_url.hpp"
#include "redaction.hpp"
#include "retry_policy.hpp"
#include "secret.hpp"
#include "token_reply.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Largest reply body accepted; larger ones are refused while they arrive, never buffered whole.
inline constexpr std::size_t kMaxReplyBytes = 1024 * 1024;

/// Connections the engine opens at most to one host (and port); further requests to it wait
/// for one to be free. The default of `Options::maxConnectionsPerHost`; 0 = no limit.
inline constexpr std::size_t kDefaultMaxConnectionsPerHost = 64;

/// How long after its deadline a request that libcurl has not timed out itself (one still
/// waiting for a free connection) is ended by the engine.
inline constexpr std::chrono::milliseconds kDeadlineGrace{20};

/// True for a host that can only be this machine: localhost, 127.0.0.0/8, ::1 and ::ffff:127.x.
/// `host` as libcurl's URL parser returns it (IPv4 normalised, IPv6 in brackets).
inline bool isLoopbackHost(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // "localhost."
    if (host.size() == 9 && startsWithNoCase(host, "localhost")) return true;
    std::string_view address = host;
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
        address = address.substr(1, address.size() - 2);
        if (address == "::1") return true;
        if (!startsWithNoCase(address, "::ffff:")) return false;
        address.remove_prefix(7);
    }
    // A dotted IPv4 address whose first byte is 127 (libcurl normalises "127.1" and friends).
    if (address.substr(0, 4) != "127.") return false;
    int dots = 0;
    for (const char c : address) {
        if (c == '.') {
            ++dots;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    return dots == 3;
}

/// Why `url` must not be fetched: plain http to a host other than loopback would carry the
/// credentials in clear. nullopt when it may be fetched (https, loopback, allowed, or a URL
/// libcurl will refuse on its own).
inline std::optional<std::string> cleartextRefusal(const std::string& url, bool allowInsecureHttp) {
    if (allowInsecureHttp) return std::nullopt;
    const CurlUrlPtr parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return std::nullopt;
    char* scheme = nullptr;
    char* host = nullptr;
    std::optional<std::string> refusal;
    if (curl_url_get(parsed.get(), CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK && std::string_view(scheme) == "http" &&
        !isLoopbackHost(host)) {
        refusal = "refusing plain http to " + std::string(host) +
                  ": the credentials would travel in clear; use https (or set Options::allowInsecureHttp)";
    }
    curl_free(scheme);
    curl_free(host);
    return refusal;
}

/// A request as the token layer builds it. `authorization` is a secret: it is wiped after use and
/// `redactions` lists the strings that must never appear in an error message.
struct HttpRequest {
    std::string url;
    bool get = false;  // a GET without a body (metadata documents); otherwise a POST of `body`
    std::string body;
    std::string contentType = "application/x-www-form-urlencoded";
    SecretString authorization;  // the whole header value, e.g. "Basic ..."; empty: no such header
    /// TLS client authentication (RFC 8705): the certificate chain and its key, PEM, handed to
    /// libcurl from memory.
    std::string clientCertificatePem;
    SecretString clientKeyPem;
    /// Run on the engine thread before each attempt, retries included: what must differ per
    /// request (a client assertion's `jti`) is made here. An `mca::Error` it throws fails the
    /// request with that error.
    std::function<void(HttpRequest& request)> beforeAttempt;
    std::string caInfo;
    std::string proxy;  // empty: libcurl's environment variables decide
    std::vector<SecretString> redactions;
    std::chrono::steady_clock::time_point deadline;
    bool allowInsecureHttp = false;  // plain http to a host other than loopback (Options::allowInsecureHttp)
};

/// The final HTTP reply of a request, after retries: the body of a 200, or the last refusal.
struct HttpReply {
    long status = 0;
    std::string body;
    std::optional<SystemTime> date;  // the reply's Date header
};

/// Called once per request on the engine thread (or inline when submitted after shutdown, in a
/// fork() child, or for a refused URL): either `reply` is set, or `error` holds an `mca::Error`
/// (Network, Timeout, InvalidResponse, Shutdown, MissingServerUrl). An exception it throws is dropped.
using HttpCompletion = std::function<void(HttpReply* reply, std::exception_ptr error)>;

/// Told about each retry (on the engine thread): the request, the attempt that failed, the wait
/// before the next one, and why (already redacted).
using RetryObserver = std::function<void(const HttpRequest& request, unsigned attempt, std::chrono::milliseconds delay,
                                         const std::string& reason)>;

class HttpEngine {
  public:
    /// @param maxConnectionsPerHost connections open at once to one host and port at most
    /// (CURLMOPT_MAX_HOST_CONNECTIONS); 0 = no limit.
    explicit HttpEngine(RetryPolicy policy = {}, RetryObserver onRetry = nullptr,
                        std::size_t maxConnectionsPerHost = kDefaultMaxConnectionsPerHost)
        : policy_(policy), onRetry_(std::move(onRetry)) {
        ensureCurlGlobalInit();
        multi_.reset(curl_multi_init());
        if (!multi_) {
            throw std::runtime_error("mca: curl_multi_init failed");
        }
        curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS,
                          static_cast<long>(std::min<std::size_t>(maxConnectionsPerHost, LONG_MAX)));
        thread_ = std::thread([this] { run(); });
    }

    ~HttpEngine() { stop(); }

    HttpEngine(const HttpEngine&) = delete;
    HttpEngine& operator=(const HttpEngine&) = delete;

    /// Queues a request; `done` runs exactly once. It runs inline with Shutdown after stop() and
    /// in a fork() child, and with MissingServerUrl for plain http off loopback (unless allowed).
    void submit(HttpRequest request, HttpCompletion done) {
        if (forkGuard_.inChild()) {  // no engine thread here: fail now rather than never
            Transfer(std::move(request), std::move(done))
                .fail(Error(Errc::Shutdown,
                            "this AuthClient was created before fork(); create a new AuthClient in the child"));
            return;
        }
        if (auto refusal = cleartextRefusal(request.url, request.allowInsecureHttp)) {  // nothing is sent
            Transfer(std::move(request), std::move(done)).fail(Error(Errc::MissingServerUrl, *refusal));
            return;
        }
        auto transfer = std::make_unique<Transfer>(std::move(request), std::move(done));
        {
            std::lock_guard lock(queueMutex_);
            if (!stopping_) {
                queue_.push_back(std::move(transfer));
                // Woken under the lock: the request's completion may destroy the engine, and
                // stop() waits for this lock, after which nothing here is touched.
                curl_multi_wakeup(multi_.get());
            }
        }
        if (transfer) transfer->fail(Error(Errc::Shutdown, "the AuthClient is shutting down"));
    }

    /// The engine thread's id: completions run on it.
    std::thread::id threadId() const noexcept { return thread_.get_id(); }

    /// Stops the engine thread; every unfinished request completes with Errc::Shutdown. Idempotent.
    /// Stops the engine thread; every unfinished request completes with Errc::Shutdown before it
    /// returns. Idempotent. Called from a completion on the engine thread itself (a client
    /// destroyed in its own callback), it completes them there and does not join: the thread ends
    /// when that completion returns, touching nothing of this object, which may be gone by then.
    /// In a fork() child it lets go of the thread (it does not exist there) and of the multi
    /// handle and transfers without cleaning them up: their connections belong to the parent, and
    /// closing them (a TLS close_notify) would break the parent's.
    void stop() {
        if (forkGuard_.inChild()) return letGoInChild();
        bool wasStopping = false;
        {
            std::lock_guard lock(queueMutex_);
            wasStopping = stopping_;
            stopping_ = true;
        }
        if (std::this_thread::get_id() == thread_.get_id()) {
            if (wasStopping) return;  // the shutdown is under way already (another thread joins)
            shutdownTransfers();
            *leftBehind_ = true;  // run() returns as soon as this completion does
            thread_.detach();
            return;
        }
        if (thread_.joinable()) {
            curl_multi_wakeup(multi_.get());
            thread_.join();
        }
    }

  private:
    struct SlistWiper {  // header lists hold the Authorization value: wipe before freeing
        void operator()(curl_slist* list) const noexcept {
            for (curl_slist* item = list; item != nullptr; item = item->next) {
                OPENSSL_cleanse(item->data, std::strlen(item->data));
            }
            curl_slist_free_all(list);
        }
    };
    using SecretSlistPtr = std::unique_ptr<curl_slist, SlistWiper>;

    struct Transfer {
        Transfer(HttpRequest r, HttpCompletion d)
            : request(std::move(r)), done(std::move(d)), proxy(splitProxyUrl(request.proxy)) {
            // The proxy's password goes to libcurl on its own; libcurl's error text may still
            // quote it (decoded or as written), so it is redacted like the tenant's secret.
            for (auto& secret : proxy.redactions) request.redactions.push_back(std::move(secret));
            proxy.redactions.clear();
            wipeString(request.proxy);
        }
        Transfer(const Transfer&) = delete;
        Transfer& operator=(const Transfer&) = delete;
        ~Transfer() { wipeString(request.body); }  // it may hold a secret or a client assertion

        void fail(const Error& error) { finish(nullptr, std::make_exception_ptr(error)); }
        void finish(HttpReply* finalReply, std::exception_ptr error) noexcept {
            if (done) {
                auto callback = std::move(done);
                done = nullptr;
                try {
                    callback(finalReply, std::move(error));
                } catch (...) {  // the backstop: a throwing completion must not end the process
                }
            }
        }
        std::string redacted(std::string text) const {
            redactAll(text, request.redactions);
            return text;
        }

        HttpRequest request;
        HttpCompletion done;
        ProxySetting proxy;  // request.proxy without its credentials, and the credentials
        unsigned attempt = 0;
        // Per attempt:
        CurlEasyPtr easy;
        SecretSlistPtr headers;
        HttpReply reply;
        std::string retryAfter;
        bool bodyTooLarge = false;
        std::optional<Error> lastFailure;  // the failure a scheduled retry is retrying
        char errorBuffer[CURL_ERROR_SIZE] = {};
        std::multimap<std::chrono::steady_clock::time_point, Transfer*>::iterator deadlineEntry;  // while active
    };

    static std::size_t onBody(char* data, std::size_t size, std::size_t count, void* user) {
        auto* transfer = static_cast<Transfer*>(user);
        const std::size_t bytes = size * count;
        if (transfer->reply.body.size() + bytes > kMaxReplyBytes) {
            transfer->bodyTooLarge = true;
            return 0;  // aborts the transfer with CURLE_WRITE_ERROR
        }
        transfer->reply.body.append(data, bytes);
        return bytes;
    }

    static std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
        auto* transfer = static_cast<Transfer*>(user);
        const std::size_t bytes = size * count;
        const std::string_view line(data, bytes);
        if (startsWithNoCase(line, "HTTP/")) {  // a new response (e.g. after 100 Continue)
            transfer->reply.date.reset();
            transfer->retryAfter.clear();
        } else if (startsWithNoCase(line, "date:")) {
            transfer->reply.date = parseHttpDate(line.substr(5));
        } else if (startsWithNoCase(line, "retry-after:")) {
            transfer->retryAfter = std::string(trimWhitespace(line.substr(12)));
        }
        return bytes;
    }

    void startAttempt(std::unique_ptr<Transfer> owned) {
        Transfer& transfer = *owned;
        const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(transfer.request.deadline -
                                                                                     std::chrono::steady_clock::now());
        if (remaining.count() <= 0) {  // a retry that found its budget spent: report what it retried
            if (transfer.attempt == 0) return transfer.fail(Error(Errc::Timeout, "no time left in the fetch budget"));
            if (transfer.lastFailure) return transfer.fail(*transfer.lastFailure);
            return transfer.finish(&transfer.reply, nullptr);
        }
        transfer.attempt += 1;
        transfer.lastFailure.reset();
        transfer.reply = HttpReply{};
        transfer.retryAfter.clear();
        transfer.bodyTooLarge = false;
        transfer.errorBuffer[0] = '\0';
        transfer.easy.reset(curl_easy_init());
        transfer.headers.reset();
        CURL* easy = transfer.easy.get();
        if (easy == nullptr) {
            transfer.fail(Error(Errc::Network, "curl_easy_init failed"));
            return;
        }
        if (transfer.request.beforeAttempt) {
            try {
                transfer.request.beforeAttempt(transfer.request);
            } catch (const Error& error) {
                return transfer.fail(error);
            } catch (...) {
                return transfer.fail(Error(Errc::Network, "preparing the request failed"));
            }
        }
        curl_slist* headers = nullptr;
        // The Authorization line is built in storage that wipes itself; libcurl copies each line.
        SecretString authorizationLine;
        if (!transfer.request.authorization.view().empty()) {
            constexpr std::string_view kAuthorization = "Authorization: ";
            authorizationLine.buffer().reserve(kAuthorization.size() + transfer.request.authorization.view().size());
            authorizationLine.buffer().append(kAuthorization).append(transfer.request.authorization.view());
        }
        const std::string contentTypeLine =
            transfer.request.get ? std::string() : "Content-Type: " + transfer.request.contentType;
        for (const char* header :
             {authorizationLine.view().c_str(), contentTypeLine.c_str(), "Accept: application/json", "Expect:"}) {
            if (*header == '\0') continue;
            curl_slist* appended = curl_slist_append(headers, header);
            if (appended == nullptr) {
                const SecretSlistPtr partial(headers);
                transfer.fail(Error(Errc::Network, "out of memory building the request"));
                return;
            }
            headers = appended;
        }
        transfer.headers.reset(headers);

        curl_easy_setopt(easy, CURLOPT_URL, transfer.request.url.c_str());
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);  // credentials never go to another host
        if (transfer.request.get) {
            curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(easy, CURLOPT_POST, 1L);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer.request.body.c_str());
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(transfer.request.body.size()));
        }
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "mca-oauth/" MCA_OAUTH_VERSION_STRING);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!transfer.request.clientCertificatePem.empty()) {
            // Not copied by libcurl: the request owns the PEMs (and wipes the key) for the
            // transfer's lifetime. libcurl keys its connection reuse on the certificate.
            curl_blob certificate{transfer.request.clientCertificatePem.data(),
                                  transfer.request.clientCertificatePem.size(), CURL_BLOB_NOCOPY};
            curl_blob key{const_cast<char*>(transfer.request.clientKeyPem.view().data()),
                          transfer.request.clientKeyPem.view().size(), CURL_BLOB_NOCOPY};
            curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &certificate);
            curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
            curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (!transfer.request.caInfo.empty()) {  // exactly this bundle: not libcurl's compiled-in CA path too
            curl_easy_setopt(easy, CURLOPT_CAINFO, transfer.request.caInfo.c_str());
            curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
        }
        if (!transfer.proxy.url.empty()) {
            curl_easy_setopt(easy, CURLOPT_PROXY, transfer.proxy.url.c_str());
            if (transfer.proxy.hasCredentials) {
                curl_easy_setopt(easy, CURLOPT_PROXYUSERNAME, transfer.proxy.user.view().c_str());
                curl_easy_setopt(easy, CURLOPT_PROXYPASSWORD, transfer.proxy.password.view().c_str());
            }
        }
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700  // 7.87.0
        // A resolver thread still running when the transfer ends (DNS that never answers) is
        // left to finish on its own instead of being joined on the engine thread.
        curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
        curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxReplyBytes));
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &HttpEngine::onBody);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &HttpEngine::onHeader);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);

        if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK) {
            transfer.fail(Error(Errc::Network, "curl_multi_add_handle failed"));
            return;
        }
        transfer.deadlineEntry = deadlines_.emplace(transfer.request.deadline, &transfer);
        active_.emplace(&transfer, std::move(owned));
    }

    // An attempt ended: deliver, or schedule the next attempt when the failure is transient and
    // the budget allows it.
    void finishAttempt(Transfer* raw, CURLcode code) {
        auto owned = std::move(active_.at(raw));
        active_.erase(raw);
        Transfer& transfer = *owned;
        deadlines_.erase(transfer.deadlineEntry);
        curl_multi_remove_handle(multi_.get(), transfer.easy.get());
        curl_easy_getinfo(transfer.easy.get(), CURLINFO_RESPONSE_CODE, &transfer.reply.status);
        transfer.easy.reset();
        transfer.headers.reset();

        std::optional<Error> failure;
        bool retryable = false;
        if (transfer.bodyTooLarge || code == CURLE_FILESIZE_EXCEEDED) {
            if (transfer.reply.status == 200 || transfer.reply.status == 0) {
                failure =
                    Error(Errc::InvalidResponse, "reply body exceeds the 1 MiB limit", int(transfer.reply.status));
            } else {
                transfer.reply.body = "(body over 1 MiB dropped)";  // a refusal: its status still counts
                retryable = RetryPolicy::isRetryableStatus(transfer.reply.status);
            }
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
            failure = Error(Errc::Timeout, transfer.redacted(curlReason(transfer, code)));
        } else if (code != CURLE_OK) {
            failure = Error(Errc::Network, transfer.redacted(curlReason(transfer, code)));
            retryable = RetryPolicy::isRetryableCurlCode(code);
        } else {
            retryable = RetryPolicy::isRetryableStatus(transfer.reply.status);
        }

        if (retryable && policy_.mayAttemptAgain(transfer.attempt)) {
            const auto now = std::chrono::steady_clock::now();
            auto delay = policy_.attemptBackoff(transfer.attempt, randomUnit());
            if (!transfer.retryAfter.empty()) {
                if (const auto asked = parseRetryAfter(transfer.retryAfter, std::chrono::system_clock::now())) {
                    delay = std::max(delay, *asked);
                }
            }
            // Retry only when the next attempt has time to succeed; otherwise report this failure,
            // which says more than a timeout would.
            if (now + delay + RetryPolicy::kShortestAttempt < transfer.request.deadline) {
                transfer.lastFailure = failure;
                if (onRetry_) {
                    const std::string reason =
                        failure ? failure->what() : "HTTP " + std::to_string(transfer.reply.status);
                    onRetry_(transfer.request, transfer.attempt, delay, reason);
                }
                retries_.emplace(now + delay, std::move(owned));
                return;
            }
        }
        if (failure) {
            transfer.fail(*failure);
        } else {
            transfer.finish(&transfer.reply, nullptr);
        }
    }

    static std::string curlReason(const Transfer& transfer, CURLcode code) {
        std::string reason = transfer.errorBuffer[0] != '\0' ? transfer.errorBuffer : curl_easy_strerror(code);
        while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
        return reason + " (curl error " + std::to_string(int(code)) + ")";
    }

    // Every completion may stop, or destroy, the engine from this thread (see stop()): after
    // each call that can run one, `leftBehind` says whether this object may still be touched.
    void run() {
        bool leftBehind = false;
        leftBehind_ = &leftBehind;
        for (;;) {
            {
                std::lock_guard lock(queueMutex_);
                if (stopping_) break;
                incoming_.swap(queue_);
            }
            for (auto& transfer : incoming_) {
                startAttempt(std::move(transfer));
                if (leftBehind) return;
            }
            incoming_.clear();

            auto now = std::chrono::steady_clock::now();
            while (!retries_.empty() && retries_.begin()->first <= now) {
                auto transfer = std::move(retries_.begin()->second);
                retries_.erase(retries_.begin());
                startAttempt(std::move(transfer));
                if (leftBehind) return;
            }

            int running = 0;
            curl_multi_perform(multi_.get(), &running);
            int pending = 0;
            while (CURLMsg* message = curl_multi_info_read(multi_.get(), &pending)) {
                if (message->msg != CURLMSG_DONE) continue;
                Transfer* transfer = nullptr;
                curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
                finishAttempt(transfer, message->data.result);
                if (leftBehind) return;
            }

            // libcurl times out what it is working on, but not a request still waiting for a free
            // connection (CURLMOPT_MAX_HOST_CONNECTIONS): the engine ends those at their deadline.
            now = std::chrono::steady_clock::now();
            while (!deadlines_.empty() && deadlines_.begin()->first + kDeadlineGrace <= now) {
                Transfer* overdue = deadlines_.begin()->second;
                std::snprintf(overdue->errorBuffer, sizeof overdue->errorBuffer, "%s",
                              "the fetch budget ran out (waiting for a free connection or for the server)");
                finishAttempt(overdue, CURLE_OPERATION_TIMEDOUT);
                if (leftBehind) return;
            }

            int waitMs = 1000;
            if (!retries_.empty()) {
                const auto untilRetry = std::chrono::duration_cast<std::chrono::milliseconds>(
                    retries_.begin()->first - std::chrono::steady_clock::now());
                waitMs = static_cast<int>(std::clamp<long long>(untilRetry.count() + 1, 0, waitMs));
            }
            if (!deadlines_.empty()) {
                const auto untilOverdue = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadlines_.begin()->first + kDeadlineGrace - std::chrono::steady_clock::now());
                waitMs = static_cast<int>(std::clamp<long long>(untilOverdue.count() + 1, 0, waitMs));
            }
            curl_multi_poll(multi_.get(), nullptr, 0, waitMs, nullptr);
        }
        shutdownTransfers();
    }

    // Engine thread (or stop() on it): every transfer the engine knows of fails with Shutdown.
    void shutdownTransfers() {
        const Error shutdown(Errc::Shutdown, "the AuthClient was destroyed before the fetch finished");
        for (auto& [raw, transfer] : active_) {
            curl_multi_remove_handle(multi_.get(), transfer->easy.get());
            transfer->fail(shutdown);
        }
        active_.clear();
        deadlines_.clear();
        for (auto& [when, transfer] : retries_) transfer->fail(shutdown);
        retries_.clear();
        for (auto& transfer : incoming_) {
            if (transfer) transfer->fail(shutdown);  // taken from the queue, not started yet
        }
        incoming_.clear();
        std::vector<std::unique_ptr<Transfer>> queued;
        {
            std::lock_guard lock(queueMutex_);
            queued.swap(queue_);
        }
        for (auto& transfer : queued) transfer->fail(shutdown);
    }

    const RetryPolicy policy_;
    // A fork() child: nothing here may be used (no thread runs it, a lock may be held forever)
    // nor destroyed (easy handles and the multi handle would close the parent's connections).
    void letGoInChild() noexcept {
        if (!multi_) return;  // let go already
        if (thread_.joinable()) abandonInChild(std::move(thread_));
        abandonInChild(std::move(multi_));
        abandonInChild(std::move(active_));
        abandonInChild(std::move(deadlines_));
        abandonInChild(std::move(retries_));
        abandonInChild(std::move(incoming_));
        abandonInChild(std::move(queue_));
    }

    RetryObserver onRetry_;
    CurlMultiPtr multi_;
    ForkGuard forkGuard_;
    std::thread thread_;

    std::mutex queueMutex_;  // guards queue_ and stopping_
    std::vector<std::unique_ptr<Transfer>> queue_;
    bool stopping_ = false;

    // Engine thread only:
    std::unordered_map<Transfer*, std::unique_ptr<Transfer>> active_;
    std::multimap<std::chrono::steady_clock::time_point, Transfer*> deadlines_;  // of the active ones
    std::multimap<std::chrono::steady_clock::time_point, std::unique_ptr<Transfer>> retries_;
    std::vector<std::unique_ptr<Transfer>> incoming_;  // taken from queue_, being started
    bool* leftBehind_ = nullptr;                       // run()'s flag (see run())
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

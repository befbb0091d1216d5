#pragma once

// Authorization server metadata by issuer (discovery): fetched on the engine thread, once for
// all the fetches that need it at the same time (single flight), with the engine's retries and
// the fetch's budget, and kept for hours. A caller never waits on it beyond its own future.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "discovery.hpp"
#include "http_engine.hpp"

#include <array>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

class ServerMetadataCache {
  public:
    /// Gets the metadata or why there is none; runs on the engine thread, or inline.
    using Done = std::function<void(std::shared_ptr<const ServerMetadata> metadata, std::exception_ptr error)>;

    /// How long a document is used before it is fetched again: endpoints move rarely, but they do.
    static constexpr std::chrono::hours kLifetime{6};

    ServerMetadataCache(HttpEngine& engine, const Clock& clock, HttpRequest transport)
        : engine_(engine), clock_(clock), transport_(std::move(transport)) {}

    /// The issuer's metadata: at once when a fresh copy is held, else when the one fetch for
    /// the issuer ends (started now, within `deadline`, when none is running).
    void resolve(const std::string& issuer, std::chrono::steady_clock::time_point deadline, Done done) {
        std::unique_lock lock(mutex_);
        Entry& entry = entries_[issuer];
        if (entry.metadata && steadyNow() < entry.freshUntil) {
            auto metadata = entry.metadata;
            lock.unlock();
            return done(std::move(metadata), nullptr);
        }
        entry.waiters.push_back(std::move(done));
        if (entry.fetching) return;
        entry.fetching = true;
        lock.unlock();
        try {
            fetch(std::make_shared<const Lookup>(Lookup{issuer, discoveryUrls(issuer), deadline}), 0, {});
        } catch (...) {
            complete(issuer, nullptr, std::current_exception());
        }
    }

    /// Drops what is known of an issuer (its token endpoint stopped answering): the next fetch
    /// discovers it again.
    void forget(const std::string& issuer) {
        const std::lock_guard lock(mutex_);
        if (const auto found = entries_.find(issuer); found != entries_.end()) found->second.freshUntil = {};
    }

  private:
    struct Entry {
        std::shared_ptr<const ServerMetadata> metadata;  // the last good document, even when stale
        std::chrono::steady_clock::time_point freshUntil{};
        bool fetching = false;
        std::vector<Done> waiters;
    };
    struct Lookup {
        std::string issuer;
        std::array<std::string, 2> urls;  // RFC 8414, then OpenID Connect Discovery
        std::chrono::steady_clock::time_point deadline;
    };

    static std::string withoutCode(const Error& error) {
        const std::string text = error.what();
        const auto colon = text.find(": ");
        return colon == std::string::npos ? text : text.substr(colon + 2);
    }

    /// Tries the document at `urls[index]`; a missing or unusable one moves on to the next.
    void fetch(std::shared_ptr<const Lookup> lookup, std::size_t index, std::string earlierProblem) {
        HttpRequest request = transport_;
        request.url = lookup->urls[index];
        request.get = true;
        request.deadline = lookup->deadline;
        engine_.submit(std::move(request), [this, lookup, index, earlierProblem = std::move(earlierProblem)](
                                               HttpReply* reply, std::exception_ptr error) noexcept {
            try {
                if (error) return complete(lookup->issuer, nullptr, std::move(error));
                std::string problem;
                if (reply->status == 200) {
                    try {
                        return complete(
                            lookup->issuer,
                            std::make_shared<const ServerMetadata>(parseServerMetadata(reply->body, lookup->issuer)),
                            nullptr);
                    } catch (const Error& invalid) {
                        problem = withoutCode(invalid);
                    }
                } else {
                    problem = "HTTP " + std::to_string(reply->status);
                }
                problem = lookup->urls[index] + ": " + problem;
                if (index + 1 < lookup->urls.size()) return fetch(lookup, index + 1, problem);
                complete(lookup->issuer, nullptr,
                         std::make_exception_ptr(Error(Errc::InvalidResponse,
                                                       "no usable metadata for issuer " + lookup->issuer + " (" +
                                                           earlierProblem + "; " + problem + ")",
                                                       static_cast<int>(reply->status))));
            } catch (...) {
                complete(lookup->issuer, nullptr, std::current_exception());
            }
        });
    }

    /// Ends the issuer's fetch. When it failed, a stale document is still better than none.
    void complete(const std::string& issuer, std::shared_ptr<const ServerMetadata> metadata,
                  std::exception_ptr error) noexcept {
        std::vector<Done> waiters;
        {
            const std::lock_guard lock(mutex_);
            const auto found = entries_.find(issuer);  // resolve() made it
            if (found == entries_.end()) return;
            Entry& entry = found->second;
            entry.fetching = false;
            waiters.swap(entry.waiters);
            if (metadata) {
                entry.metadata = metadata;
                entry.freshUntil = steadyNow() + kLifetime;
            } else if (entry.metadata) {
                metadata = entry.metadata;
                error = nullptr;
            }
        }
        for (auto& waiter : waiters) {
            try {
                waiter(metadata, error);
            } catch (...) {  // a waiter's own failure is its own
            }
        }
    }

    /// The client's clock, which a user may inject: if it throws, the real one answers.
    std::chrono::steady_clock::time_point steadyNow() const noexcept {
        try {
            return clock_.steadyNow();
        } catch (...) {
            return std::chrono::steady_clock::now();
        }
    }

    HttpEngine& engine_;
    const Clock& clock_;
    const HttpRequest transport_;
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

#pragma once

/// @file redis_token_store.hpp
/// @brief A `mca::TokenStore` on Redis, so that a fleet of back ends makes one token request per
/// tenant. Optional: needs hiredis (Debian: libhiredis-dev; CMake target `mca::oauth_redis`).

#include "auth_client.hpp"
#include "detail/redis_url.hpp"
#include "token_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mca {

/// @brief Shares sealed tokens and fetch leases through one Redis server.
///
/// Every command is bounded by a short timeout (20 ms unless the URL says `?timeout=<ms>`).
/// After three failures in a row a circuit breaker stops using Redis for a while (1 s, doubling
/// up to 30 s) and then reconnects; meanwhile clients fetch on their own. Thread-safe: commands
/// go through one connection, one at a time.
class RedisTokenStore final : public TokenStore {
  public:
    /// @brief redis://[[user]:password@]host[:port][/db][?timeout=ms]. Throws std::invalid_argument
    /// only for a malformed URL: an unreachable server is not an error here (the store degrades).
    static std::shared_ptr<RedisTokenStore> connect(const std::string& url) {
        return std::shared_ptr<RedisTokenStore>(new RedisTokenStore(detail::parseRedisUrl(url)));
    }

    std::optional<std::string> get(const std::string& name) override {
        const auto reply = command({"GET", name});
        if (!reply || reply->type != REDIS_REPLY_STRING) return std::nullopt;
        return std::string(reply->str, reply->len);
    }

    void put(const std::string& name, const std::string& value, std::chrono::milliseconds ttl) override {
        if (ttl.count() <= 0) return;
        command({"SET", name, value, "PX", std::to_string(ttl.count())});
    }

    Lease tryLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        const auto reply =
            command({"SET", name, holder, "NX", "PX", std::to_string(std::max<long long>(1, ttl.count()))});
        if (!reply) return Lease::Unavailable;
        if (reply->type == REDIS_REPLY_STATUS) return Lease::Acquired;  // +OK
        if (reply->type == REDIS_REPLY_NIL) return Lease::HeldElsewhere;
        return Lease::Unavailable;
    }

    void releaseLease(const std::string& name, const std::string& holder) override {
        // Delete only our own lease: it may have expired and been taken by another instance.
        static const std::string kCompareAndDelete =
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
        command({"EVAL", kCompareAndDelete, "1", name, holder});
    }

    /// @brief Whether the circuit breaker currently keeps the store out of use (for diagnostics).
    bool breakerOpen() const {
        std::lock_guard lock(mutex_);
        return std::chrono::steady_clock::now() < retryAt_;
    }

  private:
    struct ReplyDeleter {
        void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
    };
    using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
    using ContextPtr = std::unique_ptr<redisContext, detail::Deleter<redisFree>>;

    explicit RedisTokenStore(detail::RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

    timeval timeoutValue() const {
        const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(endpoint_.timeout).count();
        return timeval{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    }

    // Runs one command; nullptr when Redis is unreachable, too slow, or answered an error.
    ReplyPtr command(const std::vector<std::string>& arguments) {
        std::lock_guard lock(mutex_);
        if (std::chrono::steady_clock::now() < retryAt_) return nullptr;  // breaker open
        if (!context_ && !connectLocked()) return failedLocked();
        ReplyPtr reply = run(context_.get(), arguments);
        if (!reply || context_->err != 0) {
            context_.reset();  // a context that failed is unusable: reconnect next time
            return failedLocked();
        }
        failures_ = 0;
        cooldown_ = std::chrono::seconds(1);
        if (reply->type == REDIS_REPLY_ERROR) return nullptr;
        return reply;
    }

    // Binary-safe: values are sealed bytes.
    static ReplyPtr run(redisContext* context, const std::vector<std::string>& arguments) {
        std::vector<const char*> pointers;
        std::vector<std::size_t> sizes;
        for (const auto& argument : arguments) {
            pointers.push_back(argument.data());
            sizes.push_back(argument.size());
        }
        return ReplyPtr(static_cast<redisReply*>(
            redisCommandArgv(context, static_cast<int>(arguments.size()), pointers.data(), sizes.data())));
    }

    bool connectLocked() {
        ContextPtr context(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, timeoutValue()));
        if (!context || context->err != 0 || redisSetTimeout(context.get(), timeoutValue()) != REDIS_OK) return false;
        const auto ok = [&](std::vector<std::string> arguments) {
            const ReplyPtr reply = run(context.get(), arguments);
            const bool accepted = reply && reply->type != REDIS_REPLY_ERROR;
            for (auto& argument : arguments) detail::wipeString(argument);  // AUTH carries the password
            return accepted;
        };
        if (!endpoint_.password.empty()) {
            const bool authenticated = endpoint_.user.empty() ? ok({"AUTH", endpoint_.password.view()})
                                                              : ok({"AUTH", endpoint_.user, endpoint_.password.view()});
            if (!authenticated) return false;
        }
        if (endpoint_.database != 0 && !ok({"SELECT", std::to_string(endpoint_.database)})) return false;
        context_ = std::move(context);
        return true;
    }

    ReplyPtr failedLocked() {
        if (++failures_ >= kFailuresToOpen) {
            retryAt_ = std::chrono::steady_clock::now() + cooldown_;
            cooldown_ = std::min<std::chrono::milliseconds>(cooldown_ * 2, std::chrono::seconds(30));
            failures_ = kFailuresToOpen - 1;  // after the cooldown, one failed trial reopens the breaker
        }
        return nullptr;
    }

    static constexpr int kFailuresToOpen = 3;

    const detail::RedisEndpoint endpoint_;
    mutable std::mutex mutex_;
    ContextPtr context_;
    int failures_ = 0;
    std::chrono::milliseconds cooldown_{1000};
    std::chrono::steady_clock::time_point retryAt_{};
};

}  // namespace mca

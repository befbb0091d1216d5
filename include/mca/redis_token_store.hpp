#pragma once

/// @file redis_token_store.hpp
/// @brief A `mca::TokenStore` on Redis, so that a fleet of back ends makes one token request per
/// tenant. Optional: needs hiredis (Debian: libhiredis-dev; CMake target `mca::oauth_redis`).

#include "auth_client.hpp"
#include "detail/redis_url.hpp"
#include "token_store.hpp"
#include "version.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN

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
    /// A URL with a user and an empty password (`redis://user:@host`) authenticates as that user
    /// with the empty password (an ACL user without one); with neither, no AUTH is sent.
    /// @param fleetKey a secret shared by the fleet's instances (empty: none), returned by
    /// fleetKey(): it keys the names tokens are filed under and the sealing of their values, so
    /// that a reader of Redis cannot test guesses of a tenant's secret offline. Every instance
    /// of a fleet must use the same one. It is wiped when the store is destroyed.
    static std::shared_ptr<RedisTokenStore> connect(const std::string& url, std::string fleetKey = {}) {
        auto store = std::shared_ptr<RedisTokenStore>(new RedisTokenStore(detail::parseRedisUrl(url)));
        store->fleetKey_.buffer().assign(fleetKey);
        detail::wipeString(fleetKey);
        return store;
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
        command({"EVAL", kCompareAndDelete, "1", name, holder});
    }

    bool renewLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        // Extend only our own lease, atomically: between a GET and a PEXPIRE it could lapse and
        // be taken by another instance, whose lease we would then extend.
        static constexpr std::string_view kCompareAndExpire =
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
            "else return 0 end";
        const auto reply = command(
            {"EVAL", kCompareAndExpire, "1", name, holder, std::to_string(std::max<long long>(1, ttl.count()))});
        return reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    }

    void removeIfEqual(const std::string& name, const std::string& value) override {
        command({"EVAL", kCompareAndDelete, "1", name, value});
    }

    std::string fleetKey() const override { return std::string(fleetKey_.view()); }

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

    /// Deletes KEYS[1] only if it holds ARGV[1]: a lease given back, a token retired.
    static constexpr std::string_view kCompareAndDelete =
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

    // Runs one command; nullptr when Redis is unreachable, too slow, or answered an error.
    // Arguments are views: a password is never copied into a temporary string.
    ReplyPtr command(const std::vector<std::string_view>& arguments) {
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
    static ReplyPtr run(redisContext* context, const std::vector<std::string_view>& arguments) {
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
        // Views of the endpoint's strings: the AUTH password is not copied (hiredis's own
        // command buffer still holds it until its next command).
        const auto ok = [&](const std::vector<std::string_view>& arguments) {
            const ReplyPtr reply = run(context.get(), arguments);
            return reply && reply->type != REDIS_REPLY_ERROR;
        };
        // A named user is authenticated even with an empty password (an ACL user without one).
        if (!endpoint_.user.empty()) {
            if (!ok({"AUTH", endpoint_.user, endpoint_.password.view()})) return false;
        } else if (!endpoint_.password.empty()) {
            if (!ok({"AUTH", endpoint_.password.view()})) return false;
        }
        const std::string database = std::to_string(endpoint_.database);
        if (endpoint_.database != 0 && !ok({"SELECT", database})) return false;
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
    detail::SecretString fleetKey_;  // set once by connect()
    mutable std::mutex mutex_;
    ContextPtr context_;
    int failures_ = 0;
    std::chrono::milliseconds cooldown_{1000};
    std::chrono::steady_clock::time_point retryAt_{};
};

MCA_OAUTH_NAMESPACE_END

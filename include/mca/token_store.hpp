#pragma once

/// @file token_store.hpp
/// @brief The seam for a second-level token cache shared by many clients, typically the
/// processes of a fleet (see `mca::RedisTokenStore` in <mca/redis_token_store.hpp>).

#include <chrono>
#include <optional>
#include <string>

namespace mca {

/// @brief A shared, second-level token cache. The client consults it on a local miss, before the
/// auth server, and publishes what it fetches; a local hit never touches it. Values are opaque
/// bytes (tokens sealed with the tenant's secret) under names that carry only digests.
///
/// Implementations must be thread-safe (clients call from their own store thread, and several
/// clients may share one store), must bound every call by a short timeout, and report an
/// unreachable store by returning "nothing" (`nullopt`, `Lease::Unavailable`) rather than
/// throwing: the client then fetches on its own.
class TokenStore {
  public:
    enum class Lease {
        Acquired,       ///< this caller holds the lease: it fetches and publishes
        HeldElsewhere,  ///< another instance is fetching: wait for its token
        Unavailable,    ///< the store cannot be reached: fetch locally
    };

    virtual ~TokenStore() = default;

    /// @brief The value under `name`, or nullopt when there is none or the store is unavailable.
    virtual std::optional<std::string> get(const std::string& name) = 0;

    /// @brief Stores `value` under `name` for `ttl`. Best effort: failures are ignored.
    virtual void put(const std::string& name, const std::string& value, std::chrono::milliseconds ttl) = 0;

    /// @brief Takes the lease `name` for `ttl` on behalf of `holder`, unless someone holds it.
    virtual Lease tryLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) = 0;

    /// @brief Gives the lease back, if `holder` still holds it.
    virtual void releaseLease(const std::string& name, const std::string& holder) = 0;
};

}  // namespace mca

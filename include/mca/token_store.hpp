#pragma once

/// @file token_store.hpp
/// @brief The seam for a second-level token cache shared by many clients, typically the
/// processes of a fleet (see `mca::RedisTokenStore` in <mca/redis_token_store.hpp>).

#include "version.hpp"

#include <chrono>
#include <optional>
#include <string>

MCA_OAUTH_NAMESPACE_BEGIN

/// @brief A shared, second-level token cache. The client consults it on a local miss, before the
/// auth server, and publishes what it fetches; a local hit never touches it. Values are opaque
/// bytes (tokens sealed with the tenant's secret) under names that carry only digests.
///
/// Implementations must be thread-safe (clients call from their own store thread, and several
/// clients may share one store) and must bound every call by a short timeout. An unreachable
/// store should answer "nothing" (`nullopt`, `Lease::Unavailable`); a method that throws is
/// treated the same way by the client, which then fetches on its own and keeps serving.
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

    /// @brief Extends the lease `name` to `ttl` from now, if `holder` still holds it; true when it
    /// did. The client renews its short lease while its fetch runs, so that a holder that died is
    /// noticed within one lease length. The default renews nothing: the lease then lapses after
    /// its first `ttl` and another instance may fetch too (a duplicate request, never a wrong token).
    virtual bool renewLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) {
        (void)name, (void)holder, (void)ttl;
        return false;
    }

    /// @brief Deletes `name` if it still holds exactly `value` (compare-and-delete): retires a
    /// token that a resource server refused without removing a newer one published meanwhile.
    /// The default does nothing: a refused token then stays in the store until its expiry, but
    /// the client that retired it never takes it back.
    virtual void removeIfEqual(const std::string& name, const std::string& value) { (void)name, (void)value; }

    /// @brief A secret shared by the fleet (empty: none). When set, it keys the names the client
    /// files tokens under and the sealing of their values, so that a reader of the store cannot
    /// test guesses of a tenant's secret offline.
    virtual std::string fleetKey() const { return {}; }
};

MCA_OAUTH_NAMESPACE_END

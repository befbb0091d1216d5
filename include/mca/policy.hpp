#pragma once

/// @file policy.hpp
/// @brief The client's retry and fleet policies, as `mca::Options` carries them. Included by
/// <mca/auth_client.hpp>; the defaults are the ones the README's "Reliability" and "Running a
/// fleet" sections describe.

#include "version.hpp"

#include <chrono>

MCA_OAUTH_NAMESPACE_BEGIN

/// @brief How a client retries and backs off. Out-of-range values are clamped (each initial
/// wait to at least 1 ms, each largest one to at least its initial one, all to 1 hour).
struct RetryOptions {
    /// Waits between the attempts of one fetch: doubling from `initialBackoff` up to
    /// `maxBackoff`, each scaled by a random factor in [0.5, 1]. A server's Retry-After is a
    /// lower bound. Only network errors, 5xx and 429 are retried, and only within `Options::timeout`.
    std::chrono::milliseconds initialBackoff{100};
    std::chrono::milliseconds maxBackoff{3200};
    /// Attempts per fetch at most; 0 = as many as fit in `Options::timeout`.
    unsigned maxAttempts = 0;
    /// After a failed fetch, a key without a valid token fails fast (callers get the last error
    /// at once) for `failFastInitial`, doubling per consecutive failure up to `failFastMax`,
    /// each scaled by a random factor in [0.5, 1].
    std::chrono::milliseconds failFastInitial{200};
    std::chrono::milliseconds failFastMax{5000};
    /// After a failed background refresh, while the cached token still serves, the next one is
    /// tried after `refreshRetryInitial`, doubling up to `refreshRetryMax`.
    std::chrono::milliseconds refreshRetryInitial{1000};
    std::chrono::milliseconds refreshRetryMax{64000};
};

/// @brief How a client with `Options::sharedStore` shares fetches with its fleet.
struct FleetOptions {
    /// The fleet-wide fetch lease lasts this long and its holder renews it every third of it while
    /// it fetches, so a holder that died is noticed within about one lease length (at least 30 ms).
    std::chrono::milliseconds leaseLength{1000};
    /// The share of `Options::timeout` a fetch may wait for another instance's token while that
    /// instance holds the lease; then it fetches for itself with the rest of its budget.
    double leaseWaitShare = 0.5;
    /// The share of `Options::timeout` a fetch may wait for the store (queued behind other
    /// lookups on the client's store thread); then it skips the store and fetches directly.
    double storeShare = 0.25;
};

MCA_OAUTH_NAMESPACE_END

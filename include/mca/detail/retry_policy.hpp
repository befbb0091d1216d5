#pragma once

// Every retry, backoff and waiting rule of the client in one place, with its defaults in the
// public `mca::RetryOptions` and `mca::FleetOptions`: how often one fetch retries the token
// endpoint, how long a failing key fails fast, how soon a failed background refresh is tried
// again, how long a fetch may spend on the shared store and on another instance's lease.

#include "../policy.hpp"
#include "../version.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

using Milliseconds = std::chrono::milliseconds;

/// The longest fetch budget accepted; longer `Options::timeout` values are clamped to it (and
/// negative ones to zero), so that deadline arithmetic never overflows.
inline constexpr Milliseconds kLongestTimeout = std::chrono::hours(1);

inline Milliseconds clampTimeout(Milliseconds timeout) { return std::clamp(timeout, Milliseconds(0), kLongestTimeout); }

class RetryPolicy {
  public:
    RetryPolicy() = default;
    RetryPolicy(const RetryOptions& retry, const FleetOptions& fleet, Milliseconds timeout)
        : retry_(sanitized(retry)), fleet_(sanitized(fleet)), timeout_(clampTimeout(timeout)) {}

    /// The budget of one fetch, retries and shared-store work included.
    Milliseconds timeout() const { return timeout_; }

    // --- Attempts of one fetch at the token endpoint ---

    /// The wait after failed attempt `attempt` (1 = the first): doubling from the initial backoff
    /// up to the largest, scaled by `jitter` in [0, 1] into [0.5, 1] of that.
    Milliseconds attemptBackoff(unsigned attempt, double jitter) const {
        return scaled(doubling(retry_.initialBackoff, retry_.maxBackoff, attempt), jitter);
    }
    /// Whether another attempt may start after `attempts` attempts.
    bool mayAttemptAgain(unsigned attempts) const { return retry_.maxAttempts == 0 || attempts < retry_.maxAttempts; }
    /// A retry is scheduled only if at least this much of the budget is left for it.
    static constexpr Milliseconds kShortestAttempt{50};

    static bool isRetryableStatus(long status) { return status == 429 || (status >= 500 && status <= 599); }

    /// Transport failures worth another attempt; configuration and TLS trust errors are not.
    static bool isRetryableCurlCode(CURLcode code) {
        switch (code) {
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_CONNECT:
            case CURLE_SEND_ERROR:
            case CURLE_RECV_ERROR:
            case CURLE_GOT_NOTHING:
            case CURLE_PARTIAL_FILE:
            case CURLE_HTTP2:
            case CURLE_HTTP2_STREAM:
            case CURLE_SSL_CONNECT_ERROR:
                return true;
            default:
                return false;
        }
    }

    // --- The process-local cache ---

    /// How long a key without a valid token fails fast after `failures` failed fetches in a row,
    /// scaled by `jitter` so that keys that failed together do not retry together.
    Milliseconds failFastBackoff(unsigned failures, double jitter) const {
        return scaled(doubling(retry_.failFastInitial, retry_.failFastMax, failures), jitter);
    }
    /// The wait before the next background refresh after `failures` failed ones, while the
    /// cached token still serves.
    Milliseconds refreshRetryDelay(unsigned failures) const {
        return doubling(retry_.refreshRetryInitial, retry_.refreshRetryMax, failures);
    }

    // --- The fleet ---

    Milliseconds leaseLength() const { return fleet_.leaseLength; }
    /// How often the lease holder renews its lease while it fetches: three times a lease length.
    Milliseconds leaseRenewal() const { return std::max(Milliseconds(1), fleet_.leaseLength / 3); }
    /// The wait before asking the store again while another instance holds the lease: 25-75 ms.
    static Milliseconds leasePoll(double jitter) {
        return Milliseconds(25 + static_cast<long long>(50 * std::clamp(jitter, 0.0, 1.0)));
    }
    /// The part of the budget a fetch may wait for another instance's token before it fetches
    /// for itself, keeping the rest for its own request.
    Milliseconds leaseWait() const { return share(fleet_.leaseWaitShare); }
    /// The part of the budget a fetch may wait for the store thread before it goes to the
    /// token endpoint directly: a slow store never costs a caller its deadline.
    Milliseconds storeWait() const { return share(fleet_.storeShare); }

  private:
    static Milliseconds doubling(Milliseconds initial, Milliseconds largest, unsigned step) {
        Milliseconds wait = initial;
        for (unsigned i = 1; i < step && wait < largest; ++i) wait *= 2;
        return std::min(wait, largest);
    }
    static Milliseconds scaled(Milliseconds wait, double jitter) {
        const double scale = 0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0);
        return Milliseconds(static_cast<long long>(static_cast<double>(wait.count()) * scale));
    }
    Milliseconds share(double part) const {
        return Milliseconds(static_cast<long long>(static_cast<double>(timeout_.count()) * part));
    }
    static RetryOptions sanitized(RetryOptions retry) {
        const auto bound = [](Milliseconds& initial, Milliseconds& largest) {
            initial = std::clamp(initial, Milliseconds(1), kLongestTimeout);
            largest = std::clamp(largest, initial, kLongestTimeout);
        };
        bound(retry.initialBackoff, retry.maxBackoff);
        bound(retry.failFastInitial, retry.failFastMax);
        bound(retry.refreshRetryInitial, retry.refreshRetryMax);
        return retry;
    }
    static FleetOptions sanitized(FleetOptions fleet) {
        fleet.leaseLength = std::clamp(fleet.leaseLength, Milliseconds(30), kLongestTimeout);
        const auto unit = [](double part) { return part >= 0.0 && part <= 1.0 ? part : 0.5; };  // NaN too
        fleet.leaseWaitShare = unit(fleet.leaseWaitShare);
        fleet.storeShare = unit(fleet.storeShare);
        return fleet;
    }

    RetryOptions retry_{};
    FleetOptions fleet_{};
    Milliseconds timeout_{10000};
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

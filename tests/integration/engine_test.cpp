// The engine under conditions a token server and a network can create, against the loopback
// server: a resolver that never answers.

#include "integration/hanging_resolver.hpp"
#include "test_support.hpp"

#include <mca/detail/http_engine.hpp>

#include <gtest/gtest.h>

#include <future>
#include <iostream>
#include <memory>
#include <thread>
#include <utility>

namespace mca::test {
namespace {

using namespace std::chrono_literals;
using detail::HttpEngine;
using detail::HttpReply;
using detail::HttpRequest;
using Clock = std::chrono::steady_clock;

long long millisecondsSince(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// --- A resolver that never answers ---

TEST(Resolver, AHangingLookupCostsOnlyItsOwnFetchAndNeverTheDestructor) {
    ServerFixture fixture;
    Options options;
    options.timeout = 2s;
    auto client = std::make_unique<AuthClient>(options);
    Credentials unresolvable = fixture.credentials();
    unresolvable.serverUrl = std::string("https://") + kHangingHost + "/imf-authserver";

    const auto started = Clock::now();
    std::promise<std::pair<long long, std::exception_ptr>> hanging;
    client->getAuthorizationHeader(unresolvable, [&](std::string, std::exception_ptr error) {
        hanging.set_value({millisecondsSince(started), error});
    });
    for (int i = 0; i < 500 && hangingLookups() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_GE(hangingLookups(), 1u) << "the test's getaddrinfo was not called: the test proves nothing";

    // Past that fetch's 2 s budget its lookup still hangs (6 s); other tenants fetch meanwhile,
    // each within its own 2 s budget.
    std::this_thread::sleep_for(2500ms);
    for (int i = 0; i < 3; ++i) {
        EXPECT_NO_THROW(client->getAuthorizationHeader(fixture.tenant(i)).get()) << "tenant " << i;
    }
    auto outcome = hanging.get_future();
    ASSERT_EQ(outcome.wait_for(10s), std::future_status::ready);
    const auto [timedOutAfter, error] = outcome.get();
    EXPECT_EQ(errorOf(detail::failedFuture(error)).code(), Errc::Timeout);
    EXPECT_LT(timedOutAfter, 5000) << "the hanging fetch ended only when its resolver did";

    // Another tenant of that host hangs in its lookup when the client is destroyed.
    const std::size_t lookupsBefore = hangingLookups();
    Credentials stuckTenant = unresolvable;
    stuckTenant.appId = "tenant-stuck";
    auto stuck = client->getAuthorizationHeader(stuckTenant);
    for (int i = 0; i < 500 && hangingLookups() == lookupsBefore; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_GT(hangingLookups(), lookupsBefore);
    const auto destroying = Clock::now();
    client.reset();
    const auto destructorMs = millisecondsSince(destroying);
    std::cout << "[ measured ] the hanging fetch failed after " << timedOutAfter << " ms (budget 2000 ms); "
              << "destructor with a lookup in flight: " << destructorMs << " ms (the resolver hangs "
              << kResolverHang.count() << " s)\n";
    EXPECT_LT(destructorMs, 3000) << "the destructor waited for the resolver";
    ASSERT_EQ(stuck.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(errorOf(std::move(stuck)).code(), Errc::Shutdown);
}

}  // namespace
}  // namespace mca::test

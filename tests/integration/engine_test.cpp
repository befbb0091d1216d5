// The engine under conditions a token server and a network can create, against the loopback
// server: a resolver that never answers, many requests to one host, plain http off loopback.

#include "integration/hanging_resolver.hpp"
#include "support/loopback_proxy.hpp"
#include "test_support.hpp"

#include <mca/detail/http_engine.hpp>
#include <mca/detail/token_request.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace mca::test {
namespace {

using namespace std::chrono_literals;
using detail::HttpEngine;
using detail::HttpReply;
using detail::HttpRequest;
using Clock = std::chrono::steady_clock;

/// The MCA token request for `appId` on `server`, with `budget` to finish.
HttpRequest tokenRequest(const McaTestServer& server, const std::string& appId, std::chrono::milliseconds budget) {
    HttpRequest request;
    request.url = detail::mcaTokenUrl(server.baseUrl() + "/", appId);
    request.body = std::string(detail::kClientCredentialsForm);
    request.authorization = detail::basicAuthorization(kClientId, kSecret);
    request.redactions.emplace_back(kSecret);
    request.deadline = Clock::now() + budget;
    return request;
}

/// How a request ended: the reply's status, or the error.
struct Outcome {
    long status = 0;
    std::optional<Error> error;
};

std::future<Outcome> submitted(HttpEngine& engine, HttpRequest request) {
    auto promise = std::make_shared<std::promise<Outcome>>();
    auto future = promise->get_future();
    engine.submit(std::move(request), [promise](HttpReply* reply, std::exception_ptr error) {
        Outcome outcome;
        if (reply != nullptr) {
            outcome.status = reply->status;
        } else {
            try {
                std::rethrow_exception(error);
            } catch (const Error& failure) {
                outcome.error = failure;
            } catch (...) {
                outcome.error = Error(Errc::Network, "not an mca::Error");
            }
        }
        promise->set_value(std::move(outcome));
    });
    return future;
}

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

// --- Connections per host ---

TEST(Engine, CapsConnectionsPerHostAndEveryQueuedRequestSucceeds) {
    ServerFixture fixture;
    fixture.server.setDelay(50ms);
    for (int i = 0; i < 100; ++i) fixture.tenant(i);
    HttpEngine engine(nullptr, 4);
    std::vector<std::future<Outcome>> outcomes;
    for (int i = 0; i < 100; ++i) {
        outcomes.push_back(submitted(engine, tokenRequest(fixture.server, "tenant-" + std::to_string(i), 60s)));
    }
    for (auto& future : outcomes) {
        const Outcome outcome = future.get();
        EXPECT_FALSE(outcome.error) << outcome.error->what();
        EXPECT_EQ(outcome.status, 200);
    }
    std::cout << "[ measured ] 100 requests, cap 4: at most " << fixture.server.peakOpenConnections()
              << " connections open at once, " << fixture.server.connectionsAccepted() << " accepted\n";
    EXPECT_LE(fixture.server.peakOpenConnections(), 4u);
    EXPECT_EQ(fixture.server.tokenRequests(), 100u);
}

TEST(Engine, TheDefaultCapHoldsForAClient) {
    ServerFixture fixture;
    fixture.server.setDelay(100ms);
    AuthClient client;
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 3 * static_cast<int>(detail::kDefaultMaxConnectionsPerHost); ++i) {
        futures.push_back(client.getAuthorizationHeader(fixture.tenant(i)));
    }
    for (auto& future : futures) EXPECT_NO_THROW(future.get());
    EXPECT_LE(fixture.server.peakOpenConnections(), detail::kDefaultMaxConnectionsPerHost);
}

TEST(Engine, ARequestWaitingForAConnectionStillEndsAtItsDeadline) {
    ServerFixture fixture;
    Reply hang;
    hang.action = Action::Hang;
    fixture.server.pushReply(hang);  // the first request holds the only connection
    HttpEngine engine(nullptr, 1);
    auto holder = submitted(engine, tokenRequest(fixture.server, kAppId, 60s));
    for (int i = 0; i < 500 && fixture.server.tokenRequests() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(fixture.server.tokenRequests(), 1u);

    const auto started = Clock::now();
    auto queued = submitted(engine, tokenRequest(fixture.server, kAppId, 1s));
    ASSERT_EQ(queued.wait_for(20s), std::future_status::ready) << "a queued request outlived its deadline";
    const Outcome outcome = queued.get();
    ASSERT_TRUE(outcome.error);
    EXPECT_EQ(outcome.error->code(), Errc::Timeout) << outcome.error->what();
    EXPECT_GE(millisecondsSince(started), 900);  // it did wait for its budget
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    EXPECT_EQ(holder.wait_for(0s), std::future_status::timeout);  // the holder still has its budget
}

// --- Plain http off loopback ---

TEST(Engine, LoopbackHostsAreRecognised) {
    for (const char* host :
         {"127.0.0.1", "127.255.0.9", "localhost", "LocalHost", "localhost.", "[::1]", "[::ffff:127.0.0.1]"}) {
        EXPECT_TRUE(detail::isLoopbackHost(host)) << host;
    }
    for (const char* host : {"10.255.255.1", "128.0.0.1", "127.0.0.1.nip.io", "localhost.example.com",
                             "example.invalid", "[::2]", "[::ffff:10.0.0.1]", "127.0.0", ""}) {
        EXPECT_FALSE(detail::isLoopbackHost(host)) << host;
    }
    EXPECT_FALSE(detail::cleartextRefusal("http://127.1:8080/token", false));  // libcurl normalises it
    EXPECT_FALSE(detail::cleartextRefusal("http://[::1]:8080/token", false));
    EXPECT_FALSE(detail::cleartextRefusal("https://auth.example.com/token", false));
    EXPECT_TRUE(detail::cleartextRefusal("HTTP://auth.example.com/token", false));
    EXPECT_FALSE(detail::cleartextRefusal("http://auth.example.com/token", true));
}

TEST(Engine, PlainHttpOffLoopbackFailsAtOnceAndSendsNothingUnlessAllowed) {
    ::unsetenv("no_proxy");
    ::unsetenv("NO_PROXY");
    LoopbackProxy proxy;  // every request the client sends goes through it, whatever the host
    Options options;
    options.proxy = proxy.url();
    options.timeout = 5s;
    Credentials remote{kAppId, kClientId, kSecret, "http://10.255.255.1/imf-authserver"};
    Credentials appId{"", kClientId, kSecret, "", "http://example.invalid/oauth/v4/tenant/token"};
    {
        AuthClient client(options);
        for (const Credentials& tenant : {remote, appId}) {
            auto future = client.getAuthorizationHeader(tenant);
            ASSERT_EQ(future.wait_for(0s), std::future_status::ready) << "refused before any network I/O";
            const Error error = errorOf(std::move(future));
            EXPECT_EQ(error.code(), Errc::MissingServerUrl) << error.what();
            EXPECT_NE(std::string(error.what()).find("allowInsecureHttp"), std::string::npos) << error.what();
            EXPECT_EQ(std::string(error.what()).find(kSecret), std::string::npos);
        }
    }
    EXPECT_TRUE(proxy.requestLines().empty()) << proxy.requestLines().front();

    options.allowInsecureHttp = true;
    AuthClient optedIn(options);
    const Error refusedByProxy = errorOf(optedIn.getAuthorizationHeader(remote));  // it only forwards to loopback
    EXPECT_EQ(refusedByProxy.httpStatus(), 403) << refusedByProxy.what();
    ASSERT_EQ(proxy.requestLines().size(), 1u);
    EXPECT_EQ(proxy.requestLines().front().rfind("POST http://10.255.255.1/imf-authserver/", 0), 0u);
}

TEST(Engine, PlainHttpToLoopbackNamesIsAllowed) {
    ServerFixture fixture;
    AuthClient client;
    Credentials byName = fixture.credentials();
    byName.serverUrl = "http://localhost:" + std::to_string(fixture.server.port()) + "/imf-authserver";
    EXPECT_NO_THROW(client.getAuthorizationHeader(byName).get());
    EXPECT_NO_THROW(client.getAuthorizationHeader(fixture.credentials()).get());  // http://127.0.0.1
}

}  // namespace
}  // namespace mca::test

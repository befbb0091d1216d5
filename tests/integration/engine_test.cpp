// The engine under conditions a token server and a network can create, against the loopback
// server: a resolver that never answers, many requests to one host, plain http off loopback,
// completions that throw or stop the engine, and fork().

#include "integration/hanging_resolver.hpp"
#include "support/loopback_proxy.hpp"
#include "test_process.hpp"
#include "test_support.hpp"

#include <mca/detail/http_engine.hpp>
#include <mca/detail/token_request.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
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
    HttpEngine engine(detail::RetryPolicy{}, nullptr, 4);
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
    HttpEngine engine(detail::RetryPolicy{}, nullptr, 1);
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

// --- Completions that throw or stop the engine ---

TEST(Engine, ACompletionThatThrowsDoesNotEndTheProcess) {
    ServerFixture fixture;
    auto engine = std::make_unique<HttpEngine>();
    std::promise<void> threw;
    engine->submit(tokenRequest(fixture.server, kAppId, 10s), [&threw](HttpReply*, std::exception_ptr) {
        threw.set_value();
        throw std::runtime_error("a completion that throws");
    });
    ASSERT_EQ(threw.get_future().wait_for(20s), std::future_status::ready);
    const Outcome next = submitted(*engine, tokenRequest(fixture.server, kAppId, 10s)).get();
    EXPECT_EQ(next.status, 200);  // the engine thread is still there
    engine->stop();
    // After stop() completions run inline, on the caller's thread: they must not throw out of submit().
    EXPECT_NO_THROW(
        engine->submit(tokenRequest(fixture.server, kAppId, 10s), [](HttpReply*, std::exception_ptr) { throw 42; }));
}

TEST(Engine, DestroyedFromItsOwnCompletionWithoutJoiningItself) {
    ServerFixture fixture;
    Reply hang;
    hang.action = Action::Hang;
    fixture.server.pushReply(hang);
    auto engine = std::make_unique<HttpEngine>();
    auto inFlight = submitted(*engine, tokenRequest(fixture.server, kAppId, 60s));
    for (int i = 0; i < 500 && fixture.server.tokenRequests() == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(fixture.server.tokenRequests(), 1u);
    std::promise<void> destroyed;
    engine->submit(tokenRequest(fixture.server, kAppId, 10s), [&](HttpReply*, std::exception_ptr) {
        engine.reset();  // ~HttpEngine on the engine thread
        destroyed.set_value();
    });
    ASSERT_EQ(destroyed.get_future().wait_for(20s), std::future_status::ready);
    // The request still in flight was completed before the destructor returned.
    ASSERT_EQ(inFlight.wait_for(0s), std::future_status::ready);
    const Outcome outcome = inFlight.get();
    ASSERT_TRUE(outcome.error);
    EXPECT_EQ(outcome.error->code(), Errc::Shutdown);
}

TEST(Engine, StoppedFromItsOwnCompletionThenDestroyedElsewhere) {
    ServerFixture fixture;
    HttpEngine engine;
    std::promise<std::optional<Error>> afterStop;
    engine.submit(tokenRequest(fixture.server, kAppId, 10s), [&](HttpReply*, std::exception_ptr) {
        engine.stop();
        engine.submit(tokenRequest(fixture.server, kAppId, 10s), [&](HttpReply*, std::exception_ptr error) {
            try {
                std::rethrow_exception(error);
            } catch (const Error& failure) {
                afterStop.set_value(failure);
            } catch (...) {
                afterStop.set_value(std::nullopt);
            }
        });
    });
    auto result = afterStop.get_future();
    ASSERT_EQ(result.wait_for(20s), std::future_status::ready);
    const auto error = result.get();
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code(), Errc::Shutdown);
}  // ~HttpEngine here, on the test's thread

// --- fork() ---

/// A shared store that never has anything: enough for the client to run a store thread.
class EmptyStore final : public TokenStore {
  public:
    std::optional<std::string> get(const std::string&) override { return std::nullopt; }
    void put(const std::string&, const std::string&, std::chrono::milliseconds) override {}
    Lease tryLease(const std::string&, const std::string&, std::chrono::milliseconds) override {
        return Lease::Unavailable;
    }
    void releaseLease(const std::string&, const std::string&) override {}
};

TEST(Fork, AChildsClientFailsFastWithShutdownAndIsDestroyedPromptly) {
    ServerFixture fixture;
    for (const bool withStore : {false, true}) {
        SCOPED_TRACE(withStore ? "with a shared store" : "without a store");
        Options options = optionsFor(fixture.credentials());
        options.timeout = 30s;
        if (withStore) options.sharedStore = std::make_shared<EmptyStore>();
        auto client = std::make_unique<AuthClient>(options);  // parent warms nothing
        const int status = runInChild(
            [&client] {
                auto future = client->getAuthorizationHeader();  // a cold key
                if (future.wait_for(5s) != std::future_status::ready) return 2;
                try {
                    future.get();
                    return 3;
                } catch (const Error& error) {
                    if (error.code() != Errc::Shutdown) return 4;
                    if (std::string(error.what()).find("fork()") == std::string::npos) return 5;
                }
                client.reset();  // must neither join the engine thread nor close the parent's connections
                return 0;
            },
            20s);
        EXPECT_EQ(status, 0) << "2: the child's fetch hung; 3: it succeeded; 4/5: another error; -1: the child "
                                "hung (destructor)";
        // The parent's client is untouched.
        EXPECT_NO_THROW(client->getAuthorizationHeader().get());
    }
}

// (Tls.AForkedChildLeavesTheParentsTlsConnectionAlone checks that the child closes nothing.)
TEST(Fork, AChildsEngineRefusesAtOnceAndIsDestroyedPromptly) {
    ServerFixture fixture;
    auto engine = std::make_unique<HttpEngine>();
    ASSERT_EQ(submitted(*engine, tokenRequest(fixture.server, kAppId, 10s)).get().status, 200);
    const int status = runInChild(
        [&] {
            auto refused = submitted(*engine, tokenRequest(fixture.server, kAppId, 10s));
            if (refused.wait_for(0s) != std::future_status::ready) return 2;  // inline, not queued
            const Outcome outcome = refused.get();
            if (!outcome.error || outcome.error->code() != Errc::Shutdown) return 3;
            engine.reset();
            return 0;
        },
        20s);
    EXPECT_EQ(status, 0) << "2: the request was queued; 3: not Shutdown; -1: the child hung";
    EXPECT_EQ(submitted(*engine, tokenRequest(fixture.server, kAppId, 10s)).get().status, 200);  // the parent's
}

}  // namespace
}  // namespace mca::test

// The Asio adapter (<mca/asio.hpp>) against the loopback server: every kind of completion token,
// where completions run, cancellation and many operations at once. Its own binary (C++20, for
// use_awaitable), built when mca::oauth_asio exists.
#include <mca/asio.hpp>

#include <gtest/gtest.h>

#include "test_support.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/version.hpp>
#if MCA_OAUTH_ASIO_HAS_CANCELLATION
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#endif
#if BOOST_VERSION >= 108000
#include <boost/asio/deferred.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mca::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

bool isHeader(const std::string& header) { return header.rfind("Bearer ey", 0) == 0; }

// The id of the client's engine thread: where the library runs a handler after a miss.
std::thread::id engineThreadOf(AuthClient& client, const Credentials& coldTenant) {
    std::promise<std::thread::id> thread;
    client.getAuthorizationHeader(coldTenant, [&thread](std::string header, std::exception_ptr error) {
        EXPECT_TRUE(isHeader(header));
        EXPECT_FALSE(error);
        thread.set_value(std::this_thread::get_id());
    });
    return thread.get_future().get();
}

// Runs an io_context on `count` threads until stop().
class IoThreads {
  public:
    explicit IoThreads(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            threads_.emplace_back([this] { context.run(); });
            ids_.push_back(threads_.back().get_id());
        }
    }
    ~IoThreads() { stop(); }
    void stop() {
        work_.reset();
        for (std::thread& thread : threads_) {
            if (thread.joinable()) thread.join();
        }
    }
    bool isOneOfMine(std::thread::id id) const { return std::find(ids_.begin(), ids_.end(), id) != ids_.end(); }

    asio::io_context context;

  private:
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{context.get_executor()};
    std::vector<std::thread> threads_;
    std::vector<std::thread::id> ids_;  // still known once the threads are joined
};

TEST(Asio, PlainHandlerGetsTheHeaderOnAsiosSystemExecutorNotTheEngineThread) {
    ServerFixture fixture;
    AuthClient client;
    const std::thread::id engine = engineThreadOf(client, fixture.tenant(1));

    std::promise<std::pair<std::string, std::thread::id>> done;
    async_get_authorization_header(client, fixture.credentials(),
                                   [&done](std::exception_ptr error, std::string header) {
                                       EXPECT_FALSE(error);
                                       done.set_value({std::move(header), std::this_thread::get_id()});
                                   });
    const auto [header, thread] = done.get_future().get();
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
    EXPECT_NE(thread, engine);
    EXPECT_NE(thread, std::this_thread::get_id());
}

TEST(Asio, UseFutureCarriesTheHeader) {
    ServerFixture fixture;
    AuthClient client;
    const std::string header = async_get_authorization_header(client, fixture.credentials(), asio::use_future).get();
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
    // The second one is a hit: the same header, no new request.
    EXPECT_EQ(async_get_authorization_header(client, fixture.credentials(), asio::use_future).get(), header);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(Asio, UseFutureCarriesTheMcaErrorWithItsHttpStatus) {
    ServerFixture fixture;
    AuthClient client;
    Credentials wrongSecret = fixture.credentials();
    wrongSecret.secret = "not-the-secret";
    const Error error = errorOf(async_get_authorization_header(client, wrongSecret, asio::use_future));
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 401);
}

TEST(Asio, UseAwaitableResumesTheCoroutineOnItsExecutorWithTheHeaderOrTheError) {
    ServerFixture fixture;
    AuthClient client;
    const std::thread::id engine = engineThreadOf(client, fixture.tenant(1));
    Credentials wrongSecret = fixture.credentials();
    wrongSecret.secret = "not-the-secret";

    asio::io_context context;
    std::string header;
    std::thread::id resumedOn;
    int refusedStatus = 0;
    Errc refusedCode{};
    asio::co_spawn(
        context,
        [&]() -> asio::awaitable<void> {
            header = co_await async_get_authorization_header(client, fixture.credentials(), asio::use_awaitable);
            resumedOn = std::this_thread::get_id();
            try {
                co_await async_get_authorization_header(client, wrongSecret, asio::use_awaitable);
            } catch (const Error& error) {
                refusedStatus = error.httpStatus();
                refusedCode = error.errc();
            }
        },
        [](std::exception_ptr error) { EXPECT_FALSE(error); });
    context.run();  // returns once the coroutine ended: the operations kept the context busy

    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
    EXPECT_EQ(resumedOn, std::this_thread::get_id());
    EXPECT_NE(resumedOn, engine);
    EXPECT_EQ(refusedStatus, 401);
    EXPECT_EQ(refusedCode, Errc::TokenGenerate);
}

TEST(Asio, DeferredStartsNothingUntilLaunched) {
#if BOOST_VERSION >= 108000
    ServerFixture fixture;
    AuthClient client;
    asio::io_context context;
    auto operation = async_get_authorization_header(client, fixture.credentials(), asio::deferred);
    EXPECT_EQ(fixture.server.tokenRequests(), 0u);
    EXPECT_EQ(client.stats().misses, 0u);

    std::string header;
    std::move(operation)(asio::bind_executor(context, [&header](std::exception_ptr error, std::string value) {
        EXPECT_FALSE(error);
        header = std::move(value);
    }));
    context.run();
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
#else
    GTEST_SKIP() << "boost::asio::deferred needs Boost 1.80; this is " << BOOST_LIB_VERSION;
#endif
}

TEST(Asio, MoveOnlyHandlersWork) {
    ServerFixture fixture;
    AuthClient client;
    asio::io_context context;
    auto payload = std::make_unique<int>(42);
    int seen = 0;
    std::string header;
    async_get_authorization_header(client, fixture.credentials(),
                                   asio::bind_executor(context, [payload = std::move(payload), &seen, &header](
                                                                    std::exception_ptr error, std::string value) {
                                       EXPECT_FALSE(error);
                                       seen = *payload;
                                       header = std::move(value);
                                   }));
    context.run();
    EXPECT_EQ(seen, 42);
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
}

// A miss completes from the engine thread, a hit inline in the library: both reach the handler
// through its strand, never inline in the initiating function.
TEST(Asio, CompletionsRunOnTheHandlersStrandNeverInlineNorOnTheEngineThread) {
    ServerFixture fixture;
    AuthClient client;
    const std::thread::id engine = engineThreadOf(client, fixture.tenant(1));
    IoThreads io(2);
    auto strand = asio::make_strand(io.context);

    struct Completion {
        std::string header;
        bool onStrand = false;
        bool afterInitiation = false;
        std::thread::id thread;
    };
    std::promise<std::pair<Completion, Completion>> done;
    bool initiating = false;  // touched only on the strand
    const auto initiate = [&](auto&& then) {
        initiating = true;
        async_get_authorization_header(
            client, fixture.credentials(),
            asio::bind_executor(strand, [&, then](std::exception_ptr error, std::string header) mutable {
                EXPECT_FALSE(error);
                then(Completion{std::move(header), strand.running_in_this_thread(), !initiating,
                                std::this_thread::get_id()});
            }));
        initiating = false;
    };
    asio::post(strand, [&] {
        initiate([&](Completion miss) { initiate([&, miss](Completion hit) { done.set_value({miss, hit}); }); });
    });
    const auto [miss, hit] = done.get_future().get();
    io.stop();

    for (const Completion& completion : {miss, hit}) {
        EXPECT_EQ(completion.header, "Bearer " + fixture.server.lastIssuedToken());
        EXPECT_TRUE(completion.onStrand);
        EXPECT_TRUE(completion.afterInitiation);
        EXPECT_TRUE(io.isOneOfMine(completion.thread));
        EXPECT_NE(completion.thread, engine);
    }
    EXPECT_EQ(client.stats().hits, 1u);
}

TEST(Asio, AnImmediateFailureIsPostedToo) {
    AuthClient client;
    asio::io_context context;
    bool called = false;
    std::exception_ptr failure;
    async_get_authorization_header(client, Credentials{},
                                   asio::bind_executor(context, [&](std::exception_ptr error, std::string header) {
                                       called = true;
                                       failure = error;
                                       EXPECT_TRUE(header.empty());
                                   }));
    EXPECT_FALSE(called);
    context.run();
    ASSERT_TRUE(called);
    EXPECT_EQ(errorOf(failure).code(), Errc::MissingAppId);
}

TEST(Asio, EveryKindOfCredentials) {
    ServerFixture fixture;
    OAuth2Client realmClient;
    realmClient.clientId = "asio-realm-client";
    realmClient.secret = "realm-secret";
    fixture.server.addOAuth2Client("asio", realmClient);
    OAuthCredentials oauth;
    oauth.clientId = realmClient.clientId;
    oauth.secret = realmClient.secret;
    oauth.tokenUrl = fixture.server.tokenEndpoint("asio");
    Options options;
    options.appId = kAppId;
    options.clientId = kClientId;
    options.secret = kSecret;
    options.serverUrl = fixture.server.baseUrl();
    AuthClient client(options);

    EXPECT_TRUE(isHeader(async_get_authorization_header(client, asio::use_future).get()));
    EXPECT_TRUE(isHeader(async_get_authorization_header(client, oauth, asio::use_future).get()));
    EXPECT_EQ(fixture.server.lastClientAuthCheck(), "ok");
    const Tenant tenant = client.tenant(fixture.tenant(2));
    EXPECT_TRUE(isHeader(async_get_authorization_header(client, tenant, asio::use_future).get()));
    const Error error = errorOf(async_get_authorization_header(client, CertificateCredentials{}, asio::use_future));
    EXPECT_EQ(error.code(), Errc::MissingAppId);
}

TEST(Asio, ShutdownCompletesPendingOperationsOnTheirExecutor) {
    ServerFixture fixture;
    fixture.server.setDelay(60s);  // the fetch is still out when the client goes
    auto client = std::make_unique<AuthClient>();
    asio::io_context context;
    std::exception_ptr failure;
    async_get_authorization_header(*client, fixture.credentials(),
                                   asio::bind_executor(context, [&](std::exception_ptr error, std::string header) {
                                       failure = error;
                                       EXPECT_TRUE(header.empty());
                                   }));
    client.reset();
    context.run();
    ASSERT_TRUE(failure);
    EXPECT_EQ(errorOf(failure).code(), Errc::Shutdown);
}

TEST(AsioConcurrency, ManyOperationsOnManyThreadsShareOneFetchPerTenant) {
    ServerFixture fixture;
    AuthClient client;
    IoThreads io(2);
    constexpr int kTenants = 3, kPerTenant = 100;
    std::vector<Credentials> tenants;
    for (int i = 0; i < kTenants; ++i) tenants.push_back(fixture.tenant(10 + i));

    std::vector<std::atomic<int>> calls(kTenants * kPerTenant);
    std::atomic<int> headers{0};
    std::promise<void> allDone;
    std::atomic<int> remaining{kTenants * kPerTenant};
    std::vector<std::thread> initiators;
    for (int t = 0; t < kTenants; ++t) {
        initiators.emplace_back([&, t] {
            for (int i = 0; i < kPerTenant; ++i) {
                const int index = t * kPerTenant + i;
                async_get_authorization_header(
                    client, tenants[t],
                    asio::bind_executor(io.context, [&, index](std::exception_ptr error, std::string header) {
                        EXPECT_FALSE(error);
                        if (isHeader(header)) ++headers;
                        ++calls[index];
                        if (--remaining == 0) allDone.set_value();
                    }));
            }
        });
    }
    for (std::thread& initiator : initiators) initiator.join();
    allDone.get_future().get();
    io.stop();

    EXPECT_EQ(headers, kTenants * kPerTenant);
    for (const auto& count : calls) EXPECT_EQ(count, 1);
    EXPECT_EQ(fixture.server.tokenRequests(), static_cast<std::size_t>(kTenants));
}

#if MCA_OAUTH_ASIO_HAS_CANCELLATION

bool isOperationAborted(const std::exception_ptr& error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const boost::system::system_error& aborted) {
        return aborted.code() == asio::error::operation_aborted;
    } catch (...) {
    }
    return false;
}

TEST(AsioConcurrency, ACancelledOperationCompletesAtOnceWhileTheFetchGoesOnForTheOthers) {
    ServerFixture fixture;
    fixture.server.setDelay(1500ms);  // the token reply comes well after the cancellation
    AuthClient client;
    std::future<std::string> other = async_get_authorization_header(client, fixture.credentials(), asio::use_future);

    asio::io_context context;
    asio::cancellation_signal signal;
    int calls = 0;
    std::exception_ptr failure;
    bool otherWasStillWaiting = false;
    async_get_authorization_header(
        client, fixture.credentials(),
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(context, [&](std::exception_ptr error, std::string header) {
                                         ++calls;
                                         failure = error;
                                         EXPECT_TRUE(header.empty());
                                         otherWasStillWaiting = other.wait_for(0s) == std::future_status::timeout;
                                     })));
    asio::post(context, [&] { signal.emit(asio::cancellation_type::terminal); });
    context.run();  // returns when the cancelled operation completed: it no longer keeps the context busy

    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(isOperationAborted(failure));
    EXPECT_TRUE(otherWasStillWaiting);
    const std::string header = other.get();
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    EXPECT_EQ(client.stats().fetches, 1u);

    // The fetch's end reaches the cancelled operation too, and is dropped: one completion only.
    context.restart();
    context.run();
    EXPECT_EQ(calls, 1);
    // The token is cached as usual.
    EXPECT_EQ(async_get_authorization_header(client, fixture.credentials(), asio::use_future).get(), header);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(AsioConcurrency, ACancellationOtherThanTerminalOrPartialIsIgnored) {
    ServerFixture fixture;
    AuthClient client;
    asio::io_context context;
    asio::cancellation_signal signal;
    std::string header;
    std::exception_ptr failure;
    async_get_authorization_header(
        client, fixture.credentials(),
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(context, [&](std::exception_ptr error, std::string value) {
                                         failure = error;
                                         header = std::move(value);
                                     })));
    asio::post(context, [&] { signal.emit(asio::cancellation_type::total); });
    context.run();
    EXPECT_FALSE(failure);
    EXPECT_EQ(header, "Bearer " + fixture.server.lastIssuedToken());
}

TEST(AsioConcurrency, CancellationRacingCompletionCompletesEachOperationExactlyOnce) {
    ServerFixture fixture;
    AuthClient client;
    IoThreads io(1);  // the signals are emitted on the handlers' executor, as Asio requires
    constexpr int kOperations = 300;
    std::deque<asio::cancellation_signal> signals(kOperations);
    std::vector<std::atomic<int>> calls(kOperations);
    std::atomic<int> headers{0}, aborted{0}, remaining{kOperations};
    std::promise<void> allDone;
    for (int i = 0; i < kOperations; ++i) {
        if (i % 10 == 0) client.invalidate(fixture.credentials());  // a fetch now and then, not only hits
        asio::post(io.context, [&, i] {
            async_get_authorization_header(
                client, fixture.credentials(),
                asio::bind_cancellation_slot(
                    signals[i].slot(),
                    asio::bind_executor(io.context, [&, i](std::exception_ptr error, std::string header) {
                        if (isHeader(header) && !error) ++headers;
                        if (isOperationAborted(error) && header.empty()) ++aborted;
                        ++calls[i];
                        if (--remaining == 0) allDone.set_value();
                    })));
        });
        asio::post(io.context, [&, i] { signals[i].emit(asio::cancellation_type::terminal); });
    }
    allDone.get_future().get();
    io.stop();

    for (const auto& count : calls) EXPECT_EQ(count, 1);
    EXPECT_EQ(headers + aborted, kOperations);  // each either the header or operation_aborted, nothing else
}

#else

TEST(AsioConcurrency, ACancelledOperationCompletesAtOnceWhileTheFetchGoesOnForTheOthers) {
    GTEST_SKIP() << "per-operation cancellation needs Boost 1.77; this is " << BOOST_LIB_VERSION;
}

#endif

}  // namespace
}  // namespace mca::test

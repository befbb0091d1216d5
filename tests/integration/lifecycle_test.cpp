// The life of one fetch at its edges: a handler that destroys its client, budgets of any size,
// a shared store that throws, is slow, or holds a lease forever, compare-and-invalidate, tenant
// handles, and token URLs that differ only by a trailing '/'.

#include "memory_store.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

struct LogLines {
    LogHandler handler() {
        return [this](LogLevel, std::string_view message) {
            std::lock_guard lock(mutex);
            lines.emplace_back(message);
        };
    }
    std::size_t count(std::string_view text) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count_if(
            lines.begin(), lines.end(), [&](const std::string& line) { return line.find(text) != std::string::npos; }));
    }
    std::mutex mutex;
    std::vector<std::string> lines;
};

TEST(Lifecycle, AHandlerMayDestroyItsOwnClient) {
    ServerFixture answering;
    McaTestServer hanging;
    hanging.addClient(kAppId, kClientId, kSecret);
    Reply hang;
    hang.action = Action::Hang;
    hanging.setDefaultReply(hang);

    auto client = std::make_shared<AuthClient>();
    std::future<std::string> pending =
        client->getAuthorizationHeader(Credentials{kAppId, kClientId, kSecret, hanging.baseUrl()});
    std::promise<std::thread::id> handlerThread;
    std::shared_ptr<AuthClient> owner = client;  // the handler holds the last reference
    client.reset();
    owner->getAuthorizationHeader(answering.credentials(), [&, owner](std::string header, std::exception_ptr) mutable {
        EXPECT_FALSE(header.empty());
        owner.reset();  // the client goes while its engine thread runs this handler
        handlerThread.set_value(std::this_thread::get_id());
    });
    owner.reset();
    auto ran = handlerThread.get_future();
    ASSERT_EQ(ran.wait_for(10s), std::future_status::ready);
    EXPECT_NE(ran.get(), std::this_thread::get_id());
    ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(errorOf(std::move(pending)).code(), Errc::Shutdown);
}

TEST(Lifecycle, AnyTimeoutIsAcceptedAndHugeOnesAreClamped) {
    ServerFixture fixture;
    for (const auto timeout :
         {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365))}) {
        Options options = optionsFor(fixture.credentials());
        options.timeout = timeout;
        AuthClient client(options);
        EXPECT_EQ(client.getAuthorizationHeader().get().rfind("Bearer ", 0), 0u);
    }
    Options negative = optionsFor(fixture.credentials());
    negative.timeout = std::chrono::milliseconds::min();
    AuthClient client(negative);
    EXPECT_EQ(errorOf(client.getAuthorizationHeader()).code(), Errc::Timeout);
}

TEST(Lifecycle, AThrowingStoreCountsAsUnavailableAndIsLoggedOncePerChange) {
    ServerFixture fixture;
    auto store = std::make_shared<MemoryStore>();
    store->throwing = true;
    LogLines log;
    Options options;
    options.sharedStore = store;
    options.log = log.handler();
    options.cacheSize = 0;  // every call goes to the store
    AuthClient client(options);
    for (int i = 0; i < 5; ++i) EXPECT_NO_THROW(client.getAuthorizationHeader(fixture.credentials()).get());
    store->throwing = false;
    EXPECT_NO_THROW(client.getAuthorizationHeader(fixture.credentials()).get());
    store->throwing = true;
    EXPECT_NO_THROW(client.getAuthorizationHeader(fixture.credentials()).get());
    EXPECT_EQ(log.count("the shared store failed"), 2u);
    EXPECT_EQ(log.count("the shared store works again"), 1u);
    EXPECT_GE(store->calls.load(), 7);
}

TEST(Lifecycle, ASlowStoreNeverCostsACallerItsDeadline) {
    McaTestServer server;
    auto store = std::make_shared<MemoryStore>();
    // Room for ThreadSanitizer on a loaded machine (100 fetches take over a second there): a 3 s
    // budget, against 9 s for a queue of 100 tenants x 2 store calls x 45 ms.
    store->callCost = 45ms;
    Options options;
    options.sharedStore = store;
    options.timeout = 3s;
    AuthClient client(options);
    std::vector<Credentials> tenants;
    for (int i = 0; i < 100; ++i) {
        const std::string appId = "slow-store-" + std::to_string(i);
        server.addClient(appId, kClientId, kSecret);
        tenants.push_back({appId, kClientId, kSecret, server.baseUrl()});
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::future<std::string>> futures;
    for (const auto& tenant : tenants) futures.push_back(client.getAuthorizationHeader(tenant));
    int succeeded = 0;
    for (auto& future : futures) {
        if (future.wait_until(start + 4500ms) == std::future_status::ready && future.get().rfind("Bearer ", 0) == 0) {
            ++succeeded;
        }
    }
    EXPECT_EQ(succeeded, 100);
    std::printf("100 cold tenants, a store at 45 ms a call: %d resolved in time, %zu token requests\n", succeeded,
                server.tokenRequests());
}

TEST(Lifecycle, ALeaseThatIsNeverReleasedCostsOnlyItsShareOfTheBudget) {
    ServerFixture fixture;
    fixture.server.setDelay(150ms);
    auto store = std::make_shared<MemoryStore>();
    store->leaseHeldForever = true;
    Options options;
    options.sharedStore = store;
    options.timeout = 1s;
    AuthClient client(options);
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get().rfind("Bearer ", 0), 0u);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

/// A store whose next token read answers what it read only after another instance released
/// its lease: the interleaving "read: nothing; the other publishes and releases; take the lease".
class StaleReadStore final : public TokenStore {
  public:
    std::atomic<bool> stallNextTokenRead{false};

    std::optional<std::string> get(const std::string& name) override {
        auto value = store_.get(name);
        if (name.find("lease") == std::string::npos && stallNextTokenRead.exchange(false)) {
            std::unique_lock lock(mutex_);
            released_.wait_for(lock, 5s, [this] { return releases_ > 0; });
        }
        return value;
    }
    void put(const std::string& name, const std::string& value, std::chrono::milliseconds ttl) override {
        store_.put(name, value, ttl);
    }
    Lease tryLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        return store_.tryLease(name, holder, ttl);
    }
    void releaseLease(const std::string& name, const std::string& holder) override {
        store_.releaseLease(name, holder);
        const std::lock_guard lock(mutex_);
        ++releases_;
        released_.notify_all();
    }
    bool renewLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        return store_.renewLease(name, holder, ttl);
    }
    void removeIfEqual(const std::string& name, const std::string& value) override {
        store_.removeIfEqual(name, value);
    }

  private:
    MemoryStore store_;
    std::mutex mutex_;
    std::condition_variable released_;
    int releases_ = 0;
};

TEST(Lifecycle, ALeaseTakenJustAfterAnotherInstancePublishedServesTheirToken) {
    ServerFixture fixture;
    fixture.server.setDelay(300ms);
    const auto store = std::make_shared<StaleReadStore>();
    Options options = optionsFor(fixture.credentials());
    options.sharedStore = store;
    AuthClient first(options), second(options);
    auto fetching = first.getAuthorizationHeader();
    while (fixture.server.requests().empty()) std::this_thread::sleep_for(1ms);  // first holds the lease
    store->stallNextTokenRead = true;
    auto waiting = second.getAuthorizationHeader();  // reads nothing; first publishes, releases; second leases
    const std::string header = fetching.get();
    EXPECT_EQ(waiting.get(), header);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);  // the lease holder looked again before fetching
    EXPECT_EQ(second.stats().storeHits, 1u);
}

TEST(Lifecycle, CompareAndInvalidateRetiresARefusedTokenOnce) {
    ServerFixture fixture;
    AuthClient client;
    const Credentials tenant = fixture.credentials();
    const std::string refused = client.getAuthorizationHeader(tenant).get();
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            for (int j = 0; j < 25; ++j) {
                client.invalidate(tenant, refused);
                EXPECT_NE(client.getAuthorizationHeader(tenant).get(), "");
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);  // the refused token and its one replacement
    const std::string replacement = client.getAuthorizationHeader(tenant).get();
    EXPECT_NE(replacement, refused);
    client.invalidate(tenant, refused);  // an old refusal does not retire the new token
    EXPECT_EQ(client.getAuthorizationHeader(tenant).get(), replacement);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

TEST(Lifecycle, TenantHandlesShareTheTokenOfTheirCredentials) {
    ServerFixture fixture;
    AuthClient client;
    const Tenant handle = client.tenant(fixture.credentials());
    const std::string header = client.getAuthorizationHeader(handle).get();
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get(), header);
    std::promise<std::string> handled;
    client.getAuthorizationHeader(handle, [&](std::string value, std::exception_ptr) { handled.set_value(value); });
    EXPECT_EQ(handled.get_future().get(), header);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    client.invalidate(handle, header);
    EXPECT_NE(client.getAuthorizationHeader(handle).get(), header);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);

    Credentials noSecret = fixture.credentials();
    noSecret.secret.clear();
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(client.tenant(noSecret))).code(), Errc::MissingSecret);
    EXPECT_EQ(errorOf(client.getAuthorizationHeader(Tenant{})).code(), Errc::MissingClientId);
}

TEST(Lifecycle, TokenUrlsThatDifferByATrailingSlashAreDifferentEndpoints) {
    McaTestServer server;
    server.addOAuthClient("tenant-slash", kClientId, kSecret);
    AuthClient client;
    Credentials exact{"", kClientId, kSecret, "", server.oauthServerUrl("tenant-slash") + "/token"};
    Credentials slashed = exact;
    slashed.tokenUrl += "/";
    EXPECT_NO_THROW(client.getAuthorizationHeader(exact).get());
    // Another endpoint: asked itself (this test server does not serve it), never answered from
    // the first one's cache entry.
    EXPECT_THROW(client.getAuthorizationHeader(slashed).get(), Error);
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests.back().target.back(), '/');
}

}  // namespace
}  // namespace mca::test

// A cache hit allocates the returned string and the future's shared state, nothing more:
// exactly as many allocations as copying the header through a promise and its future; copying an
// mca::Error allocates nothing.
// Counted with a replaced global operator new (this test binary's only one), which also tracks
// the bytes held, for the peak memory of parsing hostile replies.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

namespace {
thread_local std::size_t allocationsOnThisThread = 0;
thread_local long failAllocationAfter = -1;  // >= 0: that many more succeed on this thread, then one throws
// Bytes this thread holds through operator new (blocks it frees are counted off even when another
// thread allocated them), and the most it held since the last reset: glibc's malloc_usable_size
// gives a block's size on release.
thread_local long long bytesOnThisThread = 0;
thread_local long long peakBytesOnThisThread = 0;

void* counted(void* memory) noexcept {
    if (memory != nullptr) {
        ++allocationsOnThisThread;
        bytesOnThisThread += static_cast<long long>(malloc_usable_size(memory));
        peakBytesOnThisThread = std::max(peakBytesOnThisThread, bytesOnThisThread);
    }
    return memory;
}
void release(void* memory) noexcept {
    if (memory != nullptr) bytesOnThisThread -= static_cast<long long>(malloc_usable_size(memory));
    std::free(memory);
}
}  // namespace

void* operator new(std::size_t size) {
    if (failAllocationAfter == 0) {
        failAllocationAfter = -1;
        throw std::bad_alloc();
    }
    if (failAllocationAfter > 0) --failAllocationAfter;
    if (void* memory = counted(std::malloc(size == 0 ? 1 : size))) return memory;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return counted(std::malloc(size == 0 ? 1 : size));
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return ::operator new(size, tag); }
void operator delete(void* memory) noexcept { release(memory); }
void operator delete[](void* memory) noexcept { release(memory); }
void operator delete(void* memory, std::size_t) noexcept { release(memory); }
void operator delete[](void* memory, std::size_t) noexcept { release(memory); }

namespace mca::test {
namespace {

template <class Call>
std::size_t allocationsPerCall(Call&& call) {
    call();  // warm up: the thread's digest buffer, the cache entry
    constexpr std::size_t kCalls = 100;
    const std::size_t before = allocationsOnThisThread;
    for (std::size_t i = 0; i < kCalls; ++i) call();
    return (allocationsOnThisThread - before + kCalls - 1) / kCalls;
}

TEST(HitPath, AllocatesOnlyTheHeaderAndTheSharedState) {
    ServerFixture fixture;
    fixture.server.setTokenPadding(1024);  // a token well past any small-string buffer
    AuthClient client(optionsFor(fixture.credentials()));
    const std::string first = client.getAuthorizationHeader().get();
    ASSERT_GT(first.size(), 1024u);
    const Credentials tenant = fixture.credentials();

    // The floor: copy the header into a promise and take it out of its future (libstdc++'s
    // promise allocates its shared state and its result slot separately).
    const std::size_t floor = allocationsPerCall([&] {
        std::promise<std::string> promise;
        promise.set_value(std::string(first));
        EXPECT_EQ(promise.get_future().get().size(), first.size());
    });
    EXPECT_EQ(allocationsPerCall([&] { EXPECT_EQ(client.getAuthorizationHeader().get().size(), first.size()); }),
              floor);
    EXPECT_EQ(allocationsPerCall([&] { EXPECT_EQ(client.getAuthorizationHeader(tenant).get().size(), first.size()); }),
              floor);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

// Exceptions are copied on their way to the caller (promise::set_exception, exception_ptr, a
// catch by value): copying an mca::Error shares its message instead of allocating a new one.
TEST(ErrorCopy, AllocatesNothing) {
    static_assert(std::is_nothrow_copy_constructible_v<Error> && std::is_nothrow_copy_assignable_v<Error>);
    const Error original(Errc::TokenGenerate, "token request failed with HTTP 401: " + std::string(200, 'x'), 401);
    Error assigned(Errc::Network, "another message, long enough to be on the heap anyway");
    const std::size_t before = allocationsOnThisThread;
    Error copy(original);
    assigned = original;
    Error moved(std::move(copy));  // a move is a copy: the source keeps its message
    EXPECT_EQ(allocationsOnThisThread - before, 0u);
    // NOLINTNEXTLINE(bugprone-use-after-move): a moved-from Error keeps its message
    for (const Error* error : {&copy, &assigned, &moved}) {
        EXPECT_EQ(error->what(), original.what());  // the same text, not an equal one
        EXPECT_EQ(error->code(), Errc::TokenGenerate);
        EXPECT_EQ(error->httpStatus(), 401);
    }
}

// Wherever an allocation fails on a caller's thread during a miss, the call still completes (with
// the header or the error) and the key is never left marked as fetching with nobody to finish it.
TEST(AllocationFailure, NeverStrandsAKeyOrItsCallers) {
    ServerFixture fixture;
    Options options;
    options.cacheSize = 0;  // every call is a miss: the whole fetch start runs each time
    AuthClient client(options);
    const Credentials tenant = fixture.credentials();
    int failuresSeen = 0;
    for (long after = 0; after < 120; ++after) {
        std::future<std::string> future;
        std::promise<bool> handled;  // made before the countdown starts: only the library's allocations count
        auto handledFuture = handled.get_future();
        failAllocationAfter = after;
        try {
            future = client.getAuthorizationHeader(tenant);
        } catch (const std::bad_alloc&) {  // only when even the failed future could not be made
        }
        const bool injectedAlready = failAllocationAfter < 0;
        if (!injectedAlready) {
            try {
                client.getAuthorizationHeader(
                    tenant, [&](std::string, std::exception_ptr error) { handled.set_value(error == nullptr); });
            } catch (const std::bad_alloc&) {
                handled.set_value(false);
            }
        } else {
            handled.set_value(true);
        }
        const bool injected = failAllocationAfter < 0;
        failAllocationAfter = -1;
        if (future.valid()) {
            ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "after " << after;
            try {
                future.get();
            } catch (const std::exception&) {
                ++failuresSeen;
            }
        }
        ASSERT_EQ(handledFuture.wait_for(std::chrono::seconds(10)), std::future_status::ready) << after;
        // The key is usable again at once.
        auto next = client.getAuthorizationHeader(tenant);
        ASSERT_EQ(next.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "after " << after;
        EXPECT_EQ(next.get().rfind("Bearer ", 0), 0u) << "after " << after;
        if (!injected) {  // the calls needed fewer allocations than `after`: every point was covered
            std::printf("an allocation failed at each of the %ld allocations of a miss: no key stranded\n", after);
            break;
        }
    }
    EXPECT_GT(failuresSeen, 0);
}

/// The most memory `parse` holds at once beyond what was held before it, in bytes.
template <class Parse>
long long peakBytesOf(Parse&& parse) {
    const long long before = bytesOnThisThread;
    peakBytesOnThisThread = before;
    parse();
    return peakBytesOnThisThread - before;
}

/// 1 MiB bodies (the largest the engine accepts) built to make a JSON DOM expensive.
std::vector<std::pair<std::string, std::string>> hostileBodies() {
    constexpr std::size_t kSize = 1024 * 1024;
    const auto repeat = [&](std::string open, const std::string& item, const std::string& close) {
        std::string body = std::move(open);
        while (body.size() + item.size() + close.size() <= kSize) body += item;
        if (body.back() == ',') body.pop_back();
        return body + close;
    };
    return {
        {"tiny numbers in an array", repeat(R"({"access_token":"t","x":[)", "0,", "]}")},
        {"empty objects in an array", repeat(R"({"access_token":"t","x":[)", "{},", "]}")},
        {"empty arrays", repeat("[", "[],", "]")},
        {"deeply nested arrays", std::string(kSize / 2, '[') + std::string(kSize / 2, ']')},
        {"many small members", repeat(R"({"access_token":"t",)", R"("k":1,)", "}")},
        {"one huge string", R"({"access_token":"t","x":")" + std::string(kSize - 40, 'a') + R"("})"},
        {"error body of tiny numbers", repeat(R"({"error":"invalid_client","x":[)", "0,", "]}")},
    };
}

// Reading a token reply or an error body keeps only the few fields it needs: hostile JSON costs
// a small multiple of its size, not a DOM of millions of values (21-37 MiB per MiB before).
TEST(HostileReplies, ParsingCostsASmallMultipleOfTheBody) {
    for (const auto& hostile : hostileBodies()) {
        const std::string& shape = hostile.first;
        const std::string& body = hostile.second;  // a reference, not a binding: lambdas capture it in C++17
        const long long reply = peakBytesOf([&] {
            try {
                (void)detail::parseTokenReply(body);
            } catch (const detail::InvalidReply&) {
            }
        });
        const long long error = peakBytesOf([&] { (void)detail::describeErrorBody(body, {}); });
        std::printf("[ peak     ] %-26s body %zu B: token reply %lld B, error body %lld B\n", shape.c_str(),
                    body.size(), reply, error);
        // nlohmann's lexer buffers the current string and the text since the last scalar token,
        // each growing by doubling: one huge string costs about 4 times its size, nothing more.
        EXPECT_LE(reply, 5 * static_cast<long long>(body.size())) << shape;
        EXPECT_LE(error, 5 * static_cast<long long>(body.size())) << shape;
    }
}

}  // namespace
}  // namespace mca::test

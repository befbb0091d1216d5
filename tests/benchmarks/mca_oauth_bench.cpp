// mca_oauth_bench: every performance figure of mca-oauth, each measured next to its floor (the
// same work done with only the standard library or plain libcurl) in the same run, against a
// loopback McaTestServer started in-process. Prints a table: figure | measured | floor | ratio |
// goal | met?
//
// Run everything (from the repository root; the figures take about a minute):
//
//   cmake --preset bench && cmake --build --preset bench && build/bench/tests/benchmarks/mca_oauth_bench
//
//   mca_oauth_bench --smoke    every figure with tiny counts, a few seconds; exit 0 = all ran (CI)
//   mca_oauth_bench --node-comparison-driver ...   mca-oauth's half of compare_node.sh
//
// Timings on a shared machine are noisy: network figures are medians over interleaved rounds
// (floor, then mca-oauth, repeated); one-thread hits are Google Benchmark medians of randomly
// interleaved repetitions; two-thread scaling counts only rounds in which two independent hit
// floors scaled, i.e. the machine really gave two free cores (else the figure reads n/a).

#include "bench_support.hpp"
#include "plain_curl.hpp"
#include "test_certificates.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace mca::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kTokenHeaderBytes = 1024;  // "Bearer " + a 1 KiB-class MCA token
constexpr double kTwoFreeCores = 1.8;            // two independent hit floors scale at least this much

/// How much work each figure does: the full run, or the smoke pass that only proves they run.
struct Scale {
    bool smoke = false;
    double hitMinSeconds = 0.05;
    int hitRepetitions = 15;
    int scalingRounds = 30;
    std::chrono::duration<double> scalingRoundTime{0.1};
    int coldRounds = 5;
    std::size_t coldFetchesPerRound = 100;
    int crowdRepetitions = 5;
    std::size_t crowdCallers = 1000;
    int burstRepetitions = 3;
    std::size_t burstTenants = 1000;
    std::chrono::seconds steadyDuration{20};
    std::size_t memoryTenants = 10000;
    std::size_t boundedCacheSize = 1000;

    static Scale smokePass() {
        Scale scale;
        scale.smoke = true;
        scale.hitMinSeconds = 0.01;
        scale.hitRepetitions = 1;
        scale.scalingRounds = 1;
        scale.scalingRoundTime = 10ms;
        scale.coldRounds = 1;
        scale.coldFetchesPerRound = 5;
        scale.crowdRepetitions = 1;
        scale.crowdCallers = 50;
        scale.burstRepetitions = 1;
        scale.burstTenants = 50;
        scale.steadyDuration = 1s;
        scale.memoryTenants = 200;
        scale.boundedCacheSize = 20;
        return scale;
    }
};

std::string fixed(double value, int decimals) {
    std::ostringstream text;
    text << std::fixed << std::setprecision(decimals) << value;
    return text.str();
}

std::string groupedDigits(std::size_t count) {  // 10000 -> "10,000"
    std::string digits = std::to_string(count);
    for (auto at = static_cast<std::ptrdiff_t>(digits.size()) - 3; at > 0; at -= 3) digits.insert(at, ",");
    return digits;
}

Options optionsFor(const Credentials& tenant, std::size_t cacheSize) {
    Options options;
    options.appId = tenant.appId;
    options.clientId = tenant.clientId;
    options.secret = tenant.secret;
    options.serverUrl = tenant.serverUrl;
    options.cacheSize = cacheSize;
    return options;
}

/// Pads the server's tokens so that a header is about kTokenHeaderBytes; returns its exact size.
std::size_t padTokensToOneKiB(test::McaTestServer& server) {
    const Credentials probe = registerTenants(server, "padding", 2).front();
    const auto headerSize = [&](const Credentials& tenant) {
        AuthClient client;
        return client.getAuthorizationHeader(tenant).get().size();
    };
    const std::size_t unpadded = headerSize(probe);
    // base64url turns 3 claim bytes into 4 token bytes; `,"pad":""` costs 9 bytes of JSON.
    server.setTokenPadding((kTokenHeaderBytes - unpadded) * 3 / 4 - 9);
    return headerSize(familyTenant("padding", 1, server.baseUrl()));
}

// ---------------------------------------------------------------------------------------------
// Cache hits: one-thread latency with Google Benchmark, two-thread scaling in paired rounds.

/// Floor (a): one mutex, one unordered_map<std::string, std::string> lookup, one copy of the
/// token, one std::promise/std::future round trip.
class HitFloor {
  public:
    HitFloor(const Credentials& tenant, const std::string& header)
        : key_(tenant.serverUrl + '\n' + tenant.appId + '\n' + tenant.clientId + '\n' + tenant.secret) {
        headers_.emplace(key_, header);
    }

    std::string getAuthorizationHeader() {
        std::string header;
        {
            const std::lock_guard lock(mutex_);
            header = headers_.find(key_)->second;
        }
        std::promise<std::string> ready;
        ready.set_value(std::move(header));
        return ready.get_future().get();
    }

  private:
    std::string key_;  // the bytes mca-oauth's cache key covers
    std::mutex mutex_;
    std::unordered_map<std::string, std::string> headers_;
};

/// What a user writes by hand instead of a token cache: one struct holding the header and its
/// expiry behind a mutex; lock, check, copy out.
class HandWrittenCache {
  public:
    explicit HandWrittenCache(std::string header) : header_(std::move(header)), expiresAt_(SteadyClock::now() + 1h) {}

    std::string header() {
        const std::lock_guard lock(mutex_);
        if (SteadyClock::now() >= expiresAt_) return {};
        return header_;
    }

  private:
    std::mutex mutex_;
    std::string header_;
    SteadyClock::time_point expiresAt_;
};

/// Keeps what the console reporter shows: per benchmark, the median (or, with one repetition,
/// the only) time per call.
class ResultCollector : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            if (run.error_occurred) throw std::runtime_error(run.benchmark_name() + ": " + run.error_message);
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (run.run_type == Run::RT_Iteration || median)
                nanosecondsPerCall_[run.run_name.function_name] = run.GetAdjustedRealTime();
        }
    }

    double nanosecondsPerCall(const std::string& name) const { return nanosecondsPerCall_.at(name); }

  private:
    std::map<std::string, double> nanosecondsPerCall_;
};

/// Registers `call()` with Google Benchmark: repetitions, medians only.
template <class Call>
void registerMedianBenchmark(const char* name, Call call, const Scale& scale) {
    benchmark::RegisterBenchmark(name,
                                 [call](benchmark::State& state) {
                                     for (auto _ : state) {
                                         std::string value = call();
                                         benchmark::DoNotOptimize(value.data());
                                     }
                                 })
        ->MinTime(scale.hitMinSeconds)
        ->Repetitions(scale.hitRepetitions)
        ->ReportAggregatesOnly(true);
}

/// Runs what was registered, repetitions interleaved at random, into `results`; then forgets it.
void runRegisteredBenchmarks(ResultCollector& results) {
    std::string program = "mca_oauth_bench", randomInterleaving = "--benchmark_enable_random_interleaving=true";
    char* arguments[] = {program.data(), randomInterleaving.data()};
    int argumentCount = 2;
    benchmark::Initialize(&argumentCount, arguments);
    benchmark::RunSpecifiedBenchmarks(&results);
    benchmark::ClearRegisteredBenchmarks();
}

/// Calls per second of `call(threadIndex)` made by `threads` threads at once for `duration`.
double callsPerSecond(int threads, std::chrono::duration<double> duration,
                      const std::function<std::string(int)>& call) {
    std::atomic<bool> running{true};
    std::vector<std::size_t> calls(threads);
    std::vector<std::thread> callers;
    const auto start = SteadyClock::now();
    for (int thread = 0; thread < threads; ++thread) {
        callers.emplace_back([&, thread] {
            std::size_t made = 0;
            for (; running.load(std::memory_order_relaxed); ++made) {
                std::string header = call(thread);
                benchmark::DoNotOptimize(header.data());
            }
            calls[thread] = made;
        });
    }
    std::this_thread::sleep_for(duration);
    running = false;
    for (auto& caller : callers) caller.join();
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::size_t total = 0;
    for (const std::size_t made : calls) total += made;
    return static_cast<double>(total) / seconds;
}

std::vector<Row> cacheHits(test::McaTestServer& server, const Scale& scale) {
    const Credentials tenant = registerTenants(server, "hit", 1).front();
    AuthClient client(optionsFor(tenant, 100));
    const std::string header = client.getAuthorizationHeader().get();
    HitFloor floors[2] = {{tenant, header}, {tenant, header}};  // one per thread: no shared state
    const auto floorHit = [&](int thread) { return floors[thread].getAuthorizationHeader(); };
    const auto libraryHit = [&](int) { return client.getAuthorizationHeader().get(); };

    // Latency on one thread: Google Benchmark, repetitions interleaved at random, medians.
    registerMedianBenchmark(
        "hit/floor", [&] { return floorHit(0); }, scale);
    registerMedianBenchmark(
        "hit/mca-oauth", [&] { return libraryHit(0); }, scale);
    registerMedianBenchmark(
        "hit/mca-oauth per-tenant", [&] { return client.getAuthorizationHeader(tenant).get(); }, scale);
    ResultCollector results;
    runRegisteredBenchmarks(results);
    const double floorNs = results.nanosecondsPerCall("hit/floor");
    const double libraryNs = results.nanosecondsPerCall("hit/mca-oauth");
    const double perTenantNs = results.nanosecondsPerCall("hit/mca-oauth per-tenant");

    // Scaling to two threads: short paired rounds. A round counts only when two independent hit
    // floors scaled (the shared machine really gave two free cores while it ran).
    std::vector<double> libraryScalings;
    double bestFloorScaling = 0;
    for (int round = 0; round < scale.scalingRounds; ++round) {
        const double floorScaling =
            callsPerSecond(2, scale.scalingRoundTime, floorHit) / callsPerSecond(1, scale.scalingRoundTime, floorHit);
        const double libraryScaling = callsPerSecond(2, scale.scalingRoundTime, libraryHit) /
                                      callsPerSecond(1, scale.scalingRoundTime, libraryHit);
        bestFloorScaling = std::max(bestFloorScaling, floorScaling);
        if (floorScaling >= kTwoFreeCores) libraryScalings.push_back(libraryScaling);
    }
    Row scaling{"cache hit, 2 threads, same key: throughput vs 1 thread", "", "", "-", ">= 1.6x"};
    if (libraryScalings.empty()) {
        scaling.measured = "not measurable: no round had 2 free cores";
        scaling.floor = "best " + fixed(bestFloorScaling, 2) + "x (2 independent hit floors)";
        scaling.verdict = Verdict::NotMeasurable;
    } else {
        const double libraryScaling = median(libraryScalings);
        scaling.measured = fixed(libraryScaling, 2) + "x (median of " + std::to_string(libraryScalings.size()) +
                           " rounds with 2 free cores)";
        scaling.floor = ">= " + fixed(kTwoFreeCores, 1) + "x (2 independent hit floors)";
        scaling.verdict = verdictOf(libraryScaling >= 1.6);
    }

    const std::string size = std::to_string(header.size()) + " B header";
    return {
        {"cache hit, 1 thread, getAuthorizationHeader().get(), " + size, fixed(libraryNs, 0) + " ns",
         fixed(floorNs, 0) + " ns", fixed(libraryNs / floorNs, 2) + "x", "<= 1.3x hit floor",
         verdictOf(libraryNs <= 1.3 * floorNs)},
        scaling,
        {"(info) cache hit, 1 thread, getAuthorizationHeader(tenant).get()", fixed(perTenantNs, 0) + " ns",
         fixed(floorNs, 0) + " ns", fixed(perTenantNs / floorNs, 2) + "x", "-", Verdict::Informative},
    };
}

/// The hot path with a tenant handle: the handler form's hit for the secret and the certificate
/// flows, against the hand-written cache, in one Google Benchmark run.
std::vector<Row> tenantHandleHits(test::McaTestServer& server, const Scale& scale) {
    const Credentials secretTenant = registerTenants(server, "handle", 1).front();
    const test::PemPair pems = test::makeClientCertificate("handle-certificate-client");
    server.addCertificateClient("handle-certificate-app", pems.certificatePem);
    const CertificateCredentials certificateTenant{"handle-certificate-app", pems.certificatePem, pems.privateKeyPem,
                                                   server.baseUrl()};
    AuthClient client;
    const Tenant secretHandle = client.tenant(secretTenant);
    const Tenant certificateHandle = client.tenant(certificateTenant);
    HandWrittenCache handWritten(client.getAuthorizationHeader(secretHandle).get());
    const std::size_t certificateHeaderBytes = client.getAuthorizationHeader(certificateHandle).get().size();
    const std::size_t secretHeaderBytes = handWritten.header().size();

    const auto viaHandler = [&client](const Tenant& handle) {
        std::string header;
        client.getAuthorizationHeader(handle,
                                      [&header](std::string value, std::exception_ptr) { header = std::move(value); });
        return header;
    };
    registerMedianBenchmark(
        "handle/hand-written", [&] { return handWritten.header(); }, scale);
    registerMedianBenchmark(
        "handle/secret", [&] { return viaHandler(secretHandle); }, scale);
    registerMedianBenchmark(
        "handle/certificate", [&] { return viaHandler(certificateHandle); }, scale);
    registerMedianBenchmark(
        "handle/certificate by credentials",
        [&] {
            std::string header;
            client.getAuthorizationHeader(
                certificateTenant, [&header](std::string value, std::exception_ptr) { header = std::move(value); });
            return header;
        },
        scale);
    ResultCollector results;
    runRegisteredBenchmarks(results);
    const double floorNs = results.nanosecondsPerCall("handle/hand-written");
    const auto row = [&](const std::string& figure, const char* name, bool withGoal) {
        const double ns = results.nanosecondsPerCall(name);
        return Row{figure,
                   fixed(ns, 0) + " ns",
                   fixed(floorNs, 0) + " ns (mutex + struct)",
                   fixed(ns / floorNs, 2) + "x",
                   withGoal ? "<= 1.2x hand-written" : "-",
                   withGoal ? verdictOf(ns <= 1.2 * floorNs) : Verdict::Informative};
    };
    return {row("cache hit, handler form, tenant handle, secret flow, " + std::to_string(secretHeaderBytes) + " B",
                "handle/secret", true),
            row("cache hit, handler form, tenant handle, certificate flow, " + std::to_string(certificateHeaderBytes) +
                    " B",
                "handle/certificate", true),
            row("(info) cache hit, handler form, certificate credentials", "handle/certificate by credentials", false)};
}

/// What private_key_jwt adds to each token request: a fresh client assertion per algorithm,
/// against the bare signature of the same bytes with the same key (the part no client avoids).
std::vector<Row> clientAssertions(const Scale& scale) {
    const auto rsa = test::makeKey("RSA");
    const auto ec = test::makeKey("EC");
    const std::string rsaPem = test::privateKeyPem(rsa.get()), ecPem = test::privateKeyPem(ec.get());
    const detail::SigningKey rs256(rsaPem, "", "RS256"), ps256(rsaPem, "", "PS256"), es256(ecPem, "", "ES256");
    const std::string audience = "https://login.example.com/realms/payments/protocol/openid-connect/token";
    const std::string sample =
        rs256.clientAssertion("payments-client", audience, "key-1", std::chrono::system_clock::now());
    const std::string signingInput = sample.substr(0, sample.rfind('.'));
    const std::pair<const char*, const detail::SigningKey*> algorithms[] = {
        {"RS256", &rs256}, {"PS256", &ps256}, {"ES256", &es256}};
    for (const auto& [alg, key] : algorithms) {
        registerMedianBenchmark((std::string("assertion/") + alg).c_str(),
                                [key = key, &audience] {
                                    return key->clientAssertion("payments-client", audience, "key-1",
                                                                std::chrono::system_clock::now());
                                },
                                scale);
        registerMedianBenchmark((std::string("signature/") + alg).c_str(),
                                [key = key, &signingInput] { return key->sign(signingInput); }, scale);
    }
    ResultCollector results;
    runRegisteredBenchmarks(results);
    std::vector<Row> rows;
    for (const auto& [alg, key] : algorithms) {
        const double ns = results.nanosecondsPerCall(std::string("assertion/") + alg);
        const double floorNs = results.nanosecondsPerCall(std::string("signature/") + alg);
        rows.push_back(Row{std::string("(info) private_key_jwt assertion per token request, ") + alg,
                           fixed(ns / 1000, 1) + " us", fixed(floorNs / 1000, 1) + " us (the signature alone)",
                           fixed(ns / floorNs, 2) + "x", "-", Verdict::Informative});
    }
    return rows;
}

// ---------------------------------------------------------------------------------------------
// Network figures: plain timing loops, medians over interleaved rounds.

/// Waits (bounded) until the server has closed the connections of clients already destroyed,
/// so that one round's server threads do not run into the next round's timing.
void awaitServerConnectionsAtMost(const test::McaTestServer& server, std::size_t open) {
    const auto deadline = SteadyClock::now() + 10s;
    while (server.openConnections() > open && SteadyClock::now() < deadline) std::this_thread::sleep_for(5ms);
}

struct ColdFetch {
    std::vector<Row> rows;
    double libraryMedianMs = 0;  // the crowd figure's yardstick
};

ColdFetch coldFetchSequential(test::McaTestServer& server, const Scale& scale) {
    const auto tenants = registerTenants(server, "cold", scale.coldRounds * scale.coldFetchesPerRound);
    std::vector<TokenPost> posts(tenants.begin(), tenants.end());
    KeptAliveEasyHandle floorHandle;
    AuthClient client(optionsFor(tenants.front(), tenants.size()));
    std::vector<double> floorMs, libraryMs;
    std::size_t floorConnections = 0, libraryConnections = 0;

    for (int round = 0; round < scale.coldRounds; ++round) {
        const std::size_t first = round * scale.coldFetchesPerRound, end = first + scale.coldFetchesPerRound;
        std::size_t connectionsBefore = server.connectionsAccepted();
        for (std::size_t i = first; i < end; ++i) {
            const auto start = SteadyClock::now();
            floorHandle.fetch(posts[i]);
            floorMs.push_back(millisecondsSince(start));
        }
        floorConnections += server.connectionsAccepted() - connectionsBefore;
        connectionsBefore = server.connectionsAccepted();
        for (std::size_t i = first; i < end; ++i) {  // the same tenants: cold keys for the client
            const auto start = SteadyClock::now();
            client.getAuthorizationHeader(tenants[i]).get();
            libraryMs.push_back(millisecondsSince(start));
        }
        libraryConnections += server.connectionsAccepted() - connectionsBefore;
    }
    const double library = median(libraryMs), floor = median(floorMs);
    return {{{"cold fetch, sequential, same server (" + groupedDigits(libraryMs.size()) + " fetches)",
              fixed(library, 3) + " ms, " + std::to_string(libraryConnections) + " TCP connection(s)",
              fixed(floor, 3) + " ms, " + std::to_string(floorConnections) + " connection(s)",
              fixed(library / floor, 2) + "x", "<= 1.15x, 1 connection",
              verdictOf(library <= 1.15 * floor && libraryConnections == 1)}},
            library};
}

/// Parks `callers` threads at one gate, opens it, runs `afterOpening` on this thread, and returns
/// the time from the opening to the return of the last caller's `call`.
double releaseCrowd(std::size_t callers, const std::function<void()>& call, const std::function<void()>& afterOpening) {
    std::promise<void> open;
    const std::shared_future<void> gate = open.get_future().share();
    std::vector<SteadyClock::time_point> finished(callers);
    std::atomic<std::size_t> arrived{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < callers; ++i) {
        threads.emplace_back([&, i] {
            nameThisThread(kCallerThreadName);
            ++arrived;
            gate.wait();
            call();
            finished[i] = SteadyClock::now();
        });
    }
    while (arrived < callers) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);  // the last arrivals are parked in gate.wait() by now
    const auto start = SteadyClock::now();
    open.set_value();
    afterOpening();
    for (auto& thread : threads) thread.join();
    return Milliseconds(*std::max_element(finished.begin(), finished.end()) - start).count();
}

std::vector<Row> crowdOnOneColdKey(test::McaTestServer& server, const Scale& scale, double coldFetchMs) {
    // Per repetition: a cold key for the crowd of threads, one for the calls from one thread.
    const auto tenants = registerTenants(server, "crowd", 1 + 2 * scale.crowdRepetitions);
    // Both open their connection first, as a cold fetch finds it; the header stands in for the
    // floor's token.
    AuthClient client(optionsFor(tenants.front(), 100));
    const std::string header = client.getAuthorizationHeader(tenants.front()).get();
    KeptAliveEasyHandle floorHandle;
    floorHandle.fetch(TokenPost(tenants.front()));

    std::vector<double> threadsMs, threadsFloorMs, futuresMs;
    std::size_t mostRequests = 0;
    for (int repetition = 0; repetition < scale.crowdRepetitions; ++repetition) {
        const Credentials& threadsKey = tenants[1 + 2 * repetition];
        const Credentials& futuresKey = tenants[2 + 2 * repetition];

        std::size_t requestsBefore = server.tokenRequests();
        threadsMs.push_back(releaseCrowd(
            scale.crowdCallers, [&] { client.getAuthorizationHeader(threadsKey).get(); }, [] {}));
        mostRequests = std::max(mostRequests, server.tokenRequests() - requestsBefore);

        // The floor of a crowd of threads: single flight with a shared_future and a plain fetch.
        std::promise<std::string> fetched;
        const std::shared_future<std::string> sharedHeader = fetched.get_future().share();
        const TokenPost post(threadsKey);
        threadsFloorMs.push_back(releaseCrowd(
            scale.crowdCallers, [&] { std::string copy = sharedHeader.get(); },
            [&] {
                floorHandle.fetch(post);
                fetched.set_value(header);
            }));

        requestsBefore = server.tokenRequests();
        const auto start = SteadyClock::now();
        std::vector<std::future<std::string>> calls;
        calls.reserve(scale.crowdCallers);
        for (std::size_t i = 0; i < scale.crowdCallers; ++i) calls.push_back(client.getAuthorizationHeader(futuresKey));
        for (auto& call : calls) call.get();
        futuresMs.push_back(millisecondsSince(start));
        mostRequests = std::max(mostRequests, server.tokenRequests() - requestsBefore);
    }
    const double threads = median(threadsMs), threadsFloor = median(threadsFloorMs), futures = median(futuresMs);
    const std::string callers = groupedDigits(scale.crowdCallers);
    const std::string goal = "1 request, <= 1.2x cold fetch";
    const std::string requests = std::to_string(mostRequests) + " request(s)";
    return {
        {callers + " concurrent callers (threads), one cold key", fixed(threads, 2) + " ms, " + requests,
         fixed(coldFetchMs, 3) + " ms cold fetch; " + fixed(threadsFloor, 2) +
             " ms for the threads on a shared_future + plain fetch",
         fixed(threads / coldFetchMs, 2) + "x", goal, verdictOf(mostRequests == 1 && threads <= 1.2 * coldFetchMs)},
        {callers + " concurrent calls from one thread (futures), one cold key", fixed(futures, 2) + " ms, " + requests,
         fixed(coldFetchMs, 3) + " ms cold fetch", fixed(futures / coldFetchMs, 2) + "x", goal,
         verdictOf(mostRequests == 1 && futures <= 1.2 * coldFetchMs)},
    };
}

Row tenantsAtOnce(test::McaTestServer& server, const Scale& scale) {
    const auto tenants = registerTenants(server, "burst", scale.burstTenants);
    const std::vector<TokenPost> posts(tenants.begin(), tenants.end());
    const std::size_t idleConnections = server.openConnections();
    const auto fetchAllWithClient = [&](AuthClient& client) {
        std::vector<std::future<std::string>> headers;
        headers.reserve(tenants.size());
        for (const auto& tenant : tenants) headers.push_back(client.getAuthorizationHeader(tenant));
        for (auto& header : headers) header.get();
    };
    server.setDelay(50ms);

    // The floor opens as many connections as it needs: so may the client here (by default it
    // keeps to maxConnectionsPerHost = 64 per host).
    Options uncapped = optionsFor(tenants.front(), tenants.size());
    uncapped.maxConnectionsPerHost = 0;
    std::vector<double> floorMs, libraryMs;
    for (int repetition = 0; repetition < scale.burstRepetitions; ++repetition) {
        floorMs.push_back(fetchAllAtOnce(posts));
        awaitServerConnectionsAtMost(server, idleConnections);
        {
            AuthClient client(uncapped);
            const auto start = SteadyClock::now();
            fetchAllWithClient(client);
            libraryMs.push_back(millisecondsSince(start));
        }
        awaitServerConnectionsAtMost(server, idleConnections);
    }

    // One more, untimed round counts the client's threads while its fetches are in flight.
    int mostClientThreads = 0;
    {
        AuthClient client(uncapped);
        std::atomic<bool> sampling{true};
        std::thread sampler([&] {
            nameThisThread(kSamplerThreadName);
            while (sampling) {
                mostClientThreads = std::max(mostClientThreads, threadsOutsideServerAndBench());
                std::this_thread::sleep_for(5ms);
            }
        });
        fetchAllWithClient(client);
        sampling = false;
        sampler.join();
    }
    awaitServerConnectionsAtMost(server, idleConnections);
    server.setDelay(0ms);

    const double library = median(libraryMs), floor = median(floorMs);
    return {groupedDigits(tenants.size()) + " tenants at once, server +50 ms per request",
            fixed(library, 1) + " ms, " + std::to_string(mostClientThreads) + " client thread(s)",
            fixed(floor, 1) + " ms (plain curl multi)",
            fixed(library / floor, 2) + "x",
            "<= 1.2x, 1 engine thread",
            verdictOf(library <= 1.2 * floor && mostClientThreads == 1)};
}

Row steadyLoad(test::McaTestServer& server, const Scale& scale) {
    constexpr long long kTokenSeconds = 3;
    constexpr int kCallerThreads = 3;
    const auto tenants = registerTenants(server, "steady", 8);
    server.setExpiresIn(kTokenSeconds);
    AuthClient client(optionsFor(tenants.front(), 100));
    for (const auto& tenant : tenants) client.getAuthorizationHeader(tenant).get();  // the warm-up

    struct CallerTally {
        std::size_t calls = 0, waitedOnNetwork = 0, overOneMs = 0;
        double maxMs = 0;
    };
    std::vector<CallerTally> tallies(kCallerThreads);
    std::atomic<bool> running{true};
    const std::size_t requestsBefore = server.tokenRequests();
    std::vector<std::thread> callers;
    for (int thread = 0; thread < kCallerThreads; ++thread) {
        callers.emplace_back([&, thread] {
            nameThisThread(kCallerThreadName);
            CallerTally& tally = tallies[thread];
            for (std::size_t call = thread; running; ++call) {
                const auto start = SteadyClock::now();
                auto header = client.getAuthorizationHeader(tenants[call % tenants.size()]);
                // A future not ready on return means this call waits for a token request.
                const bool waited = header.wait_for(0s) != std::future_status::ready;
                header.get();
                const double ms = millisecondsSince(start);
                tally.calls += 1;
                tally.waitedOnNetwork += waited;
                tally.overOneMs += ms > 1.0;
                tally.maxMs = std::max(tally.maxMs, ms);
                std::this_thread::sleep_for(200us);  // a steady request rate, not a spin
            }
        });
    }
    std::this_thread::sleep_for(scale.steadyDuration);
    running = false;
    for (auto& caller : callers) caller.join();
    const std::size_t refreshes = server.tokenRequests() - requestsBefore;
    server.setExpiresIn(3600);

    CallerTally total;
    for (const auto& tally : tallies) {
        total.calls += tally.calls;
        total.waitedOnNetwork += tally.waitedOnNetwork;
        total.overOneMs += tally.overOneMs;
        total.maxMs = std::max(total.maxMs, tally.maxMs);
    }
    return {"steady load, " + std::to_string(kCallerThreads) + " threads, " + std::to_string(tenants.size()) +
                " tenants, " + std::to_string(kTokenSeconds) + " s tokens, " +
                std::to_string(scale.steadyDuration.count()) + " s",
            std::to_string(total.waitedOnNetwork) + " of " + groupedDigits(total.calls) + " calls waited; " +
                std::to_string(refreshes) + " refreshes; " + std::to_string(total.overOneMs) + " calls > 1 ms, max " +
                fixed(total.maxMs, 2) + " ms",
            "-",
            "-",
            "0 calls wait on the network",
            verdictOf(total.waitedOnNetwork == 0)};
}

struct CacheFootprint {
    std::size_t heapBytes;  // above the empty client
    std::size_t cachedTokens;
};

/// What a client with `cacheSize` holds after fetching every tenant's token, 16 at a time.
CacheFootprint fillCache(test::McaTestServer& server, const std::vector<Credentials>& tenants, std::size_t cacheSize) {
    constexpr std::size_t kInFlight = 16;
    server.clearRequests();  // the server's request log shares this process's heap
    AuthClient client(optionsFor(tenants.front(), cacheSize));
    const std::size_t emptyClient = heapBytesInUse();
    for (std::size_t first = 0; first < tenants.size(); first += kInFlight) {
        std::vector<std::future<std::string>> batch;
        for (std::size_t i = first; i < std::min(first + kInFlight, tenants.size()); ++i) {
            batch.push_back(client.getAuthorizationHeader(tenants[i]));
        }
        for (auto& header : batch) header.get();
    }
    server.clearRequests();
    return {heapBytesInUse() - emptyClient, client.cachedTokens()};
}

std::vector<Row> memory(test::McaTestServer& server, const Scale& scale, std::size_t headerBytes) {
    constexpr double kMiB = 1024.0 * 1024.0;
    const auto tenants = registerTenants(server, "memory", scale.memoryTenants);
    const CacheFootprint full = fillCache(server, tenants, tenants.size());
    const CacheFootprint bounded = fillCache(server, tenants, scale.boundedCacheSize);
    const double budgetMiB = 16.0 * tenants.size() / 10000;  // the goal, scaled for the smoke pass
    const double headersMiB = static_cast<double>(headerBytes * tenants.size()) / kMiB;
    const double fullMiB = static_cast<double>(full.heapBytes) / kMiB;
    const double boundedMiB = static_cast<double>(bounded.heapBytes) / kMiB;
    return {
        {"memory, " + groupedDigits(tenants.size()) + " cached 1 KiB tokens, heap above an empty client",
         fixed(fullMiB, 1) + " MiB, " + groupedDigits(full.heapBytes / tenants.size()) + " B/token",
         fixed(headersMiB, 1) + " MiB of headers", fixed(fullMiB / headersMiB, 2) + "x",
         "<= " + fixed(budgetMiB, budgetMiB >= 10 ? 0 : 2) + " MiB",
         verdictOf(fullMiB <= budgetMiB && full.cachedTokens == tenants.size())},
        {"memory, cacheSize " + groupedDigits(scale.boundedCacheSize) + ", " + groupedDigits(tenants.size()) +
             " tenants",
         fixed(boundedMiB, 1) + " MiB, " + groupedDigits(bounded.cachedTokens) + " tokens kept", "-", "-",
         "<= " + groupedDigits(scale.boundedCacheSize) + " tokens, heap <= 2x its share of the above",
         verdictOf(bounded.cachedTokens <= scale.boundedCacheSize &&
                   boundedMiB <= 2 * fullMiB * scale.boundedCacheSize / tenants.size())},
    };
}

/// The smoke pass's counts are too small for any goal to mean anything: it shows no verdicts.
void printTable(const std::vector<Row>& rows, bool withVerdicts) {
    const std::vector<std::string> titles = {"figure", "measured", "floor", "ratio", "goal", "met?"};
    const auto cellsOf = [&](const Row& row) {
        const char* verdict = "-";
        if (withVerdicts && row.verdict == Verdict::Met) verdict = "yes";
        if (withVerdicts && row.verdict == Verdict::Missed) verdict = "NO";
        if (withVerdicts && row.verdict == Verdict::NotMeasurable) verdict = "n/a";
        return std::vector<std::string>{row.figure, row.measured, row.floor, row.ratio, row.goal, verdict};
    };
    std::vector<std::size_t> widths(titles.size());
    for (std::size_t column = 0; column < titles.size(); ++column) widths[column] = titles[column].size();
    for (const Row& row : rows) {
        const auto cells = cellsOf(row);
        for (std::size_t column = 0; column < cells.size(); ++column) {
            widths[column] = std::max(widths[column], cells[column].size());
        }
    }
    const auto printLine = [&](const std::vector<std::string>& cells) {
        std::string line = "|";
        for (std::size_t column = 0; column < cells.size(); ++column) {
            line += " " + cells[column] + std::string(widths[column] - cells[column].size(), ' ') + " |";
        }
        std::cout << line << '\n';
    };
    std::cout << '\n';
    printLine(titles);
    std::vector<std::string> rule;
    for (const std::size_t width : widths) rule.push_back(std::string(width, '-'));
    printLine(rule);
    for (const Row& row : rows) printLine(cellsOf(row));
    std::cout << std::flush;
}

int runAllFigures(const Scale& scale) {
    const auto server = startTestServer();
    const std::size_t headerBytes = padTokensToOneKiB(*server);
    std::vector<Row> rows;
    const auto append = [&rows](std::vector<Row> more) { rows.insert(rows.end(), more.begin(), more.end()); };
    const auto announce = [](const char* figure) { std::cout << "== " << figure << std::endl; };

    announce("cache hits (Google Benchmark)");
    append(cacheHits(*server, scale));
    announce("cache hits with a tenant handle (Google Benchmark)");
    append(tenantHandleHits(*server, scale));
    append(clientAssertions(scale));
    announce("cold fetches, sequential");
    const ColdFetch cold = coldFetchSequential(*server, scale);
    append(cold.rows);
    announce("concurrent callers on one cold key");
    append(crowdOnOneColdKey(*server, scale, cold.libraryMedianMs));
    announce("tenants at once");
    rows.push_back(tenantsAtOnce(*server, scale));
    announce("steady load");
    rows.push_back(steadyLoad(*server, scale));
    announce("memory");
    append(memory(*server, scale, headerBytes));

    printTable(rows, !scale.smoke);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// compare_node.sh's C++ half: the same work the Node SDK script does, against a standalone
// mca-test-server, printed as one JSON line.

/// Serial number (the JWT's jti) of a token the server issues now: the server's count of tokens
/// issued so far, which is how a standalone server tells how many requests it saw.
unsigned long long tokensIssuedSoFar(const Credentials& tenant) {
    AuthClient uncached(optionsFor(tenant, 0));
    const std::string header = uncached.getAuthorizationHeader().get();
    return std::stoull(test::decodeJwtPayload(header.substr(std::strlen("Bearer "))).at("jti").get<std::string>());
}

int runNodeComparisonDriver(const std::map<std::string, std::string>& flags) {
    const std::string serverUrl = flags.at("--server-url"), family = flags.at("--tenant-family");
    const std::size_t coldFetches = std::stoul(flags.at("--cold-fetches"));
    const std::size_t callers = std::stoul(flags.at("--callers"));
    const auto warmDuration = std::chrono::duration<double>(std::stod(flags.at("--warm-seconds")));
    // Tenant 0 answers warm calls, 1..coldFetches are fetched cold once each, the next one is the crowd's.
    const auto tenant = [&](std::size_t index) { return familyTenant(family, index, serverUrl); };
    AuthClient client;

    const Credentials warm = tenant(0);
    client.getAuthorizationHeader(warm).get();
    std::size_t warmCalls = 0;
    const auto warmStart = SteadyClock::now();
    while (SteadyClock::now() - warmStart < warmDuration) {
        client.getAuthorizationHeader(warm).get();
        ++warmCalls;
    }
    const double callsPerSecond = warmCalls / std::chrono::duration<double>(SteadyClock::now() - warmStart).count();

    std::vector<double> coldMs;
    for (std::size_t i = 1; i <= coldFetches; ++i) {
        const Credentials cold = tenant(i);
        const auto start = SteadyClock::now();
        client.getAuthorizationHeader(cold).get();
        coldMs.push_back(millisecondsSince(start));
    }

    // Like the Node script's Promise.all: every call is made before any answer is awaited.
    const Credentials crowd = tenant(coldFetches + 1);
    const unsigned long long issuedBefore = tokensIssuedSoFar(warm);
    std::vector<std::future<std::string>> headers;
    for (std::size_t i = 0; i < callers; ++i) headers.push_back(client.getAuthorizationHeader(crowd));
    for (auto& header : headers) header.get();
    const unsigned long long requestsSeen = tokensIssuedSoFar(warm) - issuedBefore - 1;

    std::cout << R"({"callsPerSecondWarm": )" << callsPerSecond << R"(, "coldFetchMs": )" << median(coldMs)
              << R"(, "serverRequestsForCallers": )" << requestsSeen << "}" << std::endl;
    return 0;
}

}  // namespace
}  // namespace mca::bench

int main(int argc, char** argv) {
    using namespace mca::bench;
    const std::vector<std::string> arguments(argv + 1, argv + argc);
    try {
        mca::detail::ensureCurlGlobalInit();  // the floors use libcurl before any client does
        nameThisThread(kMainThreadName);
        if (!arguments.empty() && arguments.front() == "--node-comparison-driver") {
            std::map<std::string, std::string> flags;
            for (std::size_t i = 1; i + 1 < arguments.size(); i += 2) flags[arguments[i]] = arguments[i + 1];
            return runNodeComparisonDriver(flags);
        }
        if (arguments.empty()) return runAllFigures(Scale{});
        if (arguments == std::vector<std::string>{"--smoke"}) return runAllFigures(Scale::smokePass());
        std::cerr << "usage: mca_oauth_bench [--smoke]\n"
                     "       mca_oauth_bench --node-comparison-driver --server-url URL --tenant-family NAME\n"
                     "                       --cold-fetches N --callers N --warm-seconds S\n";
        return 2;
    } catch (const std::exception& error) {
        std::cerr << "mca_oauth_bench: " << error.what() << '\n';
        return 1;
    }
}

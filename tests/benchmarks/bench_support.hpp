#pragma once

// Measurement helpers shared by the benchmark's figures: statistics, heap and thread censuses,
// the loopback server and its tenants, and the result table.

#include "mca_test_server.hpp"

#include <mca/auth_client.hpp>

#include <dirent.h>
#include <malloc.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mca::bench {

using SteadyClock = std::chrono::steady_clock;
using Milliseconds = std::chrono::duration<double, std::milli>;

inline double millisecondsSince(SteadyClock::time_point start) {
    return Milliseconds(SteadyClock::now() - start).count();
}

inline double median(std::vector<double> values) {
    if (values.empty()) throw std::logic_error("median of no values");
    const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    if (values.size() % 2 == 1) return *middle;
    return (*middle + *std::max_element(values.begin(), middle)) / 2;
}

/// Heap bytes in use by the whole process: every malloc arena plus mmapped chunks. Unlike RSS it
/// does not count memory that was freed but not yet returned to the kernel.
inline std::size_t heapBytesInUse() {
    const struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

// Threads are told apart by name: a thread inherits its creator's name, so every thread a client
// starts, from its engine thread or from a caller, carries one of the names below or the client's.
inline constexpr const char* kMainThreadName = "bench-main";
inline constexpr const char* kCallerThreadName = "bench-caller";
inline constexpr const char* kServerThreadName = "test-server";
inline constexpr const char* kSamplerThreadName = "bench-sampler";

inline void nameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

/// Threads of this process that neither the loopback server nor the sampler started, and that
/// are not the main thread: with the callers gone, the threads a client owns.
inline int threadsOutsideServerAndBench() {
    std::unique_ptr<DIR, int (*)(DIR*)> tasks(opendir("/proc/self/task"), closedir);
    if (!tasks) throw std::runtime_error("cannot list /proc/self/task");
    int count = 0;
    while (const dirent* task = readdir(tasks.get())) {
        if (task->d_name[0] == '.') continue;
        std::string name;
        std::getline(std::ifstream(std::string("/proc/self/task/") + task->d_name + "/comm"), name);
        if (name.empty()) continue;  // the thread exited while we looked
        if (name != kServerThreadName && name != kSamplerThreadName) ++count;
    }
    return count - 1;
}

/// Starts a loopback server whose threads all carry kServerThreadName.
inline std::unique_ptr<test::McaTestServer> startTestServer() {
    nameThisThread(kServerThreadName);
    auto server = std::make_unique<test::McaTestServer>();
    nameThisThread(kMainThreadName);
    return server;
}

/// Tenant `index` of a family: the naming compare_node.sh registers on a standalone server too.
inline Credentials familyTenant(const std::string& family, std::size_t index, const std::string& serverUrl) {
    const std::string appId = family + "-" + std::to_string(index);
    return Credentials{appId, "client-" + appId, "secret-" + appId, serverUrl};
}

/// `count` tenants registered on `server`; each figure uses its own family so none shares a key.
inline std::vector<Credentials> registerTenants(test::McaTestServer& server, const std::string& family,
                                                std::size_t count) {
    std::vector<Credentials> tenants;
    tenants.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        tenants.push_back(familyTenant(family, i, server.baseUrl()));
        server.addClient(tenants.back().appId, tenants.back().clientId, tenants.back().secret);
    }
    return tenants;
}

enum class Verdict {
    Met,
    Missed,
    NotMeasurable,  // the machine could not provide what the figure needs (e.g. two free cores)
    Informative,    // a figure without a goal
};

inline Verdict verdictOf(bool met) { return met ? Verdict::Met : Verdict::Missed; }

/// One line of the final table.
struct Row {
    std::string figure, measured, floor, ratio, goal;
    Verdict verdict = Verdict::Informative;
};

}  // namespace mca::bench

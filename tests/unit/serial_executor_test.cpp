// The store thread's executor on its own: a throwing task, stop() from one of its tasks, and a
// fork() child that inherits it without its thread.

#include "test_process.hpp"

#include <mca/detail/serial_executor.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>

namespace mca::test {
namespace {

using namespace std::chrono_literals;
using detail::SerialExecutor;

TEST(SerialExecutor, ATaskThatThrowsIsDroppedAndTheNextOneRuns) {
    SerialExecutor executor;
    std::promise<void> ran;
    ASSERT_TRUE(executor.post([] { throw std::runtime_error("a store call failed"); }));
    ASSERT_TRUE(executor.post([] { throw 42; }));  // not even a std::exception
    ASSERT_TRUE(executor.post([&ran] { ran.set_value(); }));
    EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
}

TEST(SerialExecutor, AThrowingFinishingTaskDoesNotStopTheOthersAtStop) {
    auto executor = std::make_unique<SerialExecutor>();
    std::atomic<int> finished{0};
    const auto later = SerialExecutor::Clock::now() + 1h;  // still queued when stop() comes
    ASSERT_TRUE(executor->post([] { throw std::runtime_error("publish failed"); }, later, true));
    ASSERT_TRUE(executor->post([&finished] { ++finished; }, later, true));
    ASSERT_TRUE(executor->post([&finished] { finished += 100; }, later, false));  // dropped
    executor.reset();
    EXPECT_EQ(finished.load(), 1);
}

TEST(SerialExecutor, DestroyedByItsOwnTaskWithoutJoiningItself) {
    auto executor = std::make_unique<SerialExecutor>();
    std::atomic<int> finishing{0};
    std::atomic<int> dropped{0};
    std::promise<void> destroyed;
    const auto later = SerialExecutor::Clock::now() + 1h;
    ASSERT_TRUE(executor->post([&finishing] { ++finishing; }, later, true));  // still runs
    ASSERT_TRUE(executor->post([&dropped] { ++dropped; }, later, false));     // dropped
    ASSERT_TRUE(executor->post([&] {
        executor.reset();  // ~SerialExecutor on the executor's own thread
        destroyed.set_value();
    }));
    ASSERT_EQ(destroyed.get_future().wait_for(10s), std::future_status::ready);
    EXPECT_EQ(executor, nullptr);
    EXPECT_EQ(finishing.load(), 1);
    EXPECT_EQ(dropped.load(), 0);
}

TEST(SerialExecutor, StoppedByItsOwnTaskThenDestroyedElsewhere) {
    SerialExecutor executor;
    std::promise<bool> postedAfterStop;
    ASSERT_TRUE(executor.post([&] {
        executor.stop();
        postedAfterStop.set_value(executor.post([] {}));
    }));
    auto result = postedAfterStop.get_future();
    ASSERT_EQ(result.wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(result.get());
}  // ~SerialExecutor here, on the test's thread: nothing left to join

TEST(SerialExecutor, AForkedChildGetsNoThreadRefusesWorkAndLetsGo) {
    SerialExecutor executor;  // its thread is waiting on the condition variable when fork() strikes
    std::promise<void> ready;
    ASSERT_TRUE(executor.post([&ready] { ready.set_value(); }));
    ready.get_future().wait();
    const int status = runInChild(
        [&executor] {
            if (executor.post([] {})) return 1;  // would never run: there is no thread in the child
            executor.stop();                     // must neither join nor wait on the condition variable
            return 0;
        },
        20s);
    EXPECT_EQ(status, 0) << "1: post accepted a task in the child; -1: the child hung";
    std::promise<void> still;  // the parent's executor is unaffected
    ASSERT_TRUE(executor.post([&still] { still.set_value(); }));
    EXPECT_EQ(still.get_future().wait_for(10s), std::future_status::ready);
}

}  // namespace
}  // namespace mca::test

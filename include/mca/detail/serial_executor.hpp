#pragma once

// One thread that runs tasks in order, now or at a given time. The client runs its shared-store
// work on one (store calls block for a few milliseconds at most, never on a caller's thread or
// on the engine thread). When it stops, queued tasks marked `finishing` still run (giving a
// lease back, publishing a token); the others are dropped. A task that throws is dropped and the
// thread goes on (tasks catch and log their own errors; this is the backstop). stop() from a task
// on the executor's own thread does not join it; in a fork() child nothing is joined or run.

#include "../version.hpp"
#include "fork_guard.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

class SerialExecutor {
  public:
    using Clock = std::chrono::steady_clock;

    SerialExecutor() : thread_([this] { run(); }) {}
    ~SerialExecutor() { stop(); }
    SerialExecutor(const SerialExecutor&) = delete;
    SerialExecutor& operator=(const SerialExecutor&) = delete;

    /// Queues `task` to run at `when`. False once stopped, and in a fork() child (the thread does
    /// not exist there): the task is dropped.
    bool post(std::function<void()> task, Clock::time_point when = Clock::now(), bool finishing = false) {
        if (forkGuard_.inChild()) return false;
        // Notified under the lock: the task may destroy this executor as soon as it runs, and it
        // cannot run before the lock is released, after which nothing here is touched.
        std::lock_guard lock(state_->mutex);
        if (state_->stopping) return false;
        state_->tasks.emplace(when, Task{std::move(task), finishing});
        state_->changed.notify_one();
        return true;
    }

    /// The executor thread's id: tasks run on it.
    std::thread::id threadId() const noexcept { return thread_.get_id(); }

    /// Stops after the running task, runs the queued `finishing` tasks, drops the rest. Idempotent.
    /// Called by a task on the executor's own thread, it does the same without joining: the thread
    /// ends when that task returns, touching nothing of this object, which may be gone by then.
    /// In a fork() child it only lets go of everything: the thread does not exist there, its
    /// mutex and condition variable may be held or waited on by threads that do not exist either,
    /// and the tasks would use the parent's connections.
    void stop() {
        if (forkGuard_.inChild()) {
            if (thread_.joinable()) abandonInChild(std::move(thread_));
            if (state_) abandonInChild(std::move(state_));
            return;
        }
        bool wasStopping = false;
        {
            std::lock_guard lock(state_->mutex);
            wasStopping = state_->stopping;
            state_->stopping = true;
        }
        state_->changed.notify_one();
        if (std::this_thread::get_id() == thread_.get_id()) {
            if (wasStopping) return;     // another thread is stopping (and joining) this executor
            *state_->leftBehind = true;  // run() returns as soon as the current task does
            thread_.detach();
        } else if (thread_.joinable()) {
            thread_.join();
        }
        std::multimap<Clock::time_point, Task> left;
        {
            std::lock_guard lock(state_->mutex);
            left.swap(state_->tasks);
        }
        for (auto& [when, task] : left) {
            if (task.finishing) runGuarded(task.run);
        }
    }

  private:
    struct Task {
        std::function<void()> run;
        bool finishing;
    };

    // On the heap so that a fork() child can abandon it whole (see stop()).
    struct State {
        std::mutex mutex;
        std::condition_variable changed;
        std::multimap<Clock::time_point, Task> tasks;
        bool stopping = false;
        bool* leftBehind = nullptr;  // run()'s own flag, set before any task runs
    };

    static void runGuarded(const std::function<void()>& task) noexcept {
        try {
            task();
        } catch (...) {  // dropped: the process must not end, and the next task must still run
        }
    }

    void run() {
        bool leftBehind = false;  // set by stop() called from a task: this object may be gone
        State& state = *state_;
        std::unique_lock lock(state.mutex);
        state.leftBehind = &leftBehind;
        while (!state.stopping) {
            if (state.tasks.empty()) {
                state.changed.wait(lock);
                continue;
            }
            const auto due = state.tasks.begin()->first;
            if (Clock::now() < due) {
                state.changed.wait_until(lock, due);
                continue;
            }
            auto task = std::move(state.tasks.begin()->second.run);
            state.tasks.erase(state.tasks.begin());
            lock.unlock();
            runGuarded(task);
            if (leftBehind) return;
            lock.lock();
        }
    }

    std::unique_ptr<State> state_ = std::make_unique<State>();
    ForkGuard forkGuard_;
    std::thread thread_;  // last: starts once the members above exist
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

#pragma once

// One thread that runs tasks in order, now or at a given time. The client runs its shared-store
// work on one (store calls block for a few milliseconds at most, never on a caller's thread or
// on the engine thread). When it stops, queued tasks marked `finishing` still run (giving a
// lease back, publishing a token); the others are dropped.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace mca::detail {

class SerialExecutor {
  public:
    using Clock = std::chrono::steady_clock;

    SerialExecutor() : thread_([this] { run(); }) {}
    ~SerialExecutor() { stop(); }
    SerialExecutor(const SerialExecutor&) = delete;
    SerialExecutor& operator=(const SerialExecutor&) = delete;

    /// Queues `task` to run at `when`. False once stopped: the task is dropped.
    bool post(std::function<void()> task, Clock::time_point when = Clock::now(), bool finishing = false) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return false;
            tasks_.emplace(when, Task{std::move(task), finishing});
        }
        changed_.notify_one();
        return true;
    }

    /// The executor thread's id: tasks run on it.
    std::thread::id threadId() const noexcept { return thread_.get_id(); }

    /// Stops after the running task, runs the queued `finishing` tasks, drops the rest. Idempotent.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_one();
        if (thread_.joinable()) thread_.join();
        std::multimap<Clock::time_point, Task> left;
        {
            std::lock_guard lock(mutex_);
            left.swap(tasks_);
        }
        for (auto& [when, task] : left) {
            if (task.finishing) task.run();
        }
    }

  private:
    void run() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            if (tasks_.empty()) {
                changed_.wait(lock);
                continue;
            }
            const auto due = tasks_.begin()->first;
            if (Clock::now() < due) {
                changed_.wait_until(lock, due);
                continue;
            }
            auto task = std::move(tasks_.begin()->second.run);
            tasks_.erase(tasks_.begin());
            lock.unlock();
            task();
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    struct Task {
        std::function<void()> run;
        bool finishing;
    };
    std::multimap<Clock::time_point, Task> tasks_;
    bool stopping_ = false;
    std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mca::detail

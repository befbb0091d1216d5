#pragma once

// A reader-writer lock for data that is read on every call and written at network rate: each
// reader writes only its own cache line (a slot chosen per thread), so readers on different cores
// do not bounce a shared reader count the way std::shared_mutex's does. Writers raise a flag and
// wait for the slots to drain; readers that see the flag step back until it falls.

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>

namespace mca::detail {

class ReadMostlyMutex {
  public:
    void lock_shared() noexcept {
        auto& count = slots_[slotOfThisThread()].count;
        for (;;) {
            // seq_cst on both sides (here and in lock()) is what makes "I announced myself, then
            // saw no writer" and "I raised the flag, then saw no reader" mutually exclusive.
            count.fetch_add(1, std::memory_order_seq_cst);
            if (!writer_.load(std::memory_order_seq_cst)) return;
            count.fetch_sub(1, std::memory_order_release);
            while (writer_.load(std::memory_order_acquire)) std::this_thread::yield();
        }
    }

    void unlock_shared() noexcept { slots_[slotOfThisThread()].count.fetch_sub(1, std::memory_order_release); }

    void lock() {
        writers_.lock();
        writer_.store(true, std::memory_order_seq_cst);
        for (auto& slot : slots_) {
            while (slot.count.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
        }
    }

    void unlock() noexcept {
        writer_.store(false, std::memory_order_release);
        writers_.unlock();
    }

  private:
    static constexpr std::size_t kSlots = 8;

    static std::size_t slotOfThisThread() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t slot = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
        return slot;
    }

    struct alignas(64) Slot {
        std::atomic<int> count{0};
    };

    Slot slots_[kSlots];
    alignas(64) std::atomic<bool> writer_{false};
    std::mutex writers_;  // one writer at a time
};

}  // namespace mca::detail

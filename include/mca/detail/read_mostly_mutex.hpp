#pragma once

// What the cache-hit path writes, kept off shared cache lines and, where it can be, off locked
// instructions: each thread owns a slot (its index reused after the thread ends), so a reader
// writes only its own line, and a slot with a single owner is updated with plain stores.
//
// ReadMostlyMutex: a reader-writer lock for data that is read on every call and written at
// network rate. Readers announce themselves in their slot; writers raise a flag and wait for the
// slots to drain; readers that see the flag step back until it falls.
// ThreadTally: a counter that threads add to in their own slot and that is read as a sum.

#include "../version.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// This thread's slot: an index in [0, kThreadSlots), owned by this thread alone while
/// `exclusive`; threads beyond kThreadSlots at once share the last slot (and use atomic adds).
class ThreadSlot {
  public:
    static constexpr std::size_t kThreadSlots = 64;

    static const ThreadSlot& ofThisThread() noexcept {
        thread_local const ThreadSlot slot;
        return slot;
    }

    std::size_t index() const noexcept { return index_; }
    bool exclusive() const noexcept { return exclusive_; }

    ThreadSlot(const ThreadSlot&) = delete;
    ThreadSlot& operator=(const ThreadSlot&) = delete;

  private:
    ThreadSlot() noexcept {
        Registry& registry = registryOf();
        std::lock_guard lock(registry.mutex);
        if (!registry.free.empty()) {
            index_ = registry.free.back();
            registry.free.pop_back();
            exclusive_ = true;
        } else {
            index_ = kThreadSlots - 1;
            exclusive_ = false;
        }
    }
    ~ThreadSlot() {
        if (!exclusive_) return;
        Registry& registry = registryOf();
        std::lock_guard lock(registry.mutex);
        registry.free.push_back(index_);
    }

    struct Registry {
        Registry() {
            // The last slot is the shared one; the others are handed out, lowest first.
            for (std::size_t i = kThreadSlots - 1; i-- > 0;) free.push_back(i);
        }
        std::mutex mutex;
        std::vector<std::size_t> free;
    };
    static Registry& registryOf() noexcept {
        static Registry* registry = new Registry();  // never destroyed: threads may end after main
        return *registry;
    }

    std::size_t index_ = kThreadSlots - 1;
    bool exclusive_ = false;
};

class ReadMostlyMutex {
  public:
    void lock_shared() noexcept {
        auto& count = slots_[ThreadSlot::ofThisThread().index()].count;
        for (;;) {
            // seq_cst on both sides (here and in lock()) is what makes "I announced myself, then
            // saw no writer" and "I raised the flag, then saw no reader" mutually exclusive.
            count.fetch_add(1, std::memory_order_seq_cst);
            if (!writer_.load(std::memory_order_seq_cst)) return;
            count.fetch_sub(1, std::memory_order_release);
            while (writer_.load(std::memory_order_acquire)) std::this_thread::yield();
        }
    }

    void unlock_shared() noexcept {
        const ThreadSlot& slot = ThreadSlot::ofThisThread();
        auto& count = slots_[slot.index()].count;
        if (slot.exclusive()) {  // only this thread writes this count: no locked instruction needed
            count.store(count.load(std::memory_order_relaxed) - 1, std::memory_order_release);
        } else {
            count.fetch_sub(1, std::memory_order_release);
        }
    }

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
    struct alignas(64) Slot {
        std::atomic<int> count{0};
    };

    Slot slots_[ThreadSlot::kThreadSlots];
    alignas(64) std::atomic<bool> writer_{false};
    std::mutex writers_;  // one writer at a time
};

/// A count that many threads add to: each in its own slot, read as the sum of the slots.
class ThreadTally {
  public:
    void add() noexcept {
        const ThreadSlot& slot = ThreadSlot::ofThisThread();
        auto& value = slots_[slot.index()].value;
        if (slot.exclusive()) {
            value.store(value.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        } else {
            value.fetch_add(1, std::memory_order_relaxed);
        }
    }
    std::uint64_t total() const noexcept {
        std::uint64_t sum = 0;
        for (const auto& slot : slots_) sum += slot.value.load(std::memory_order_relaxed);
        return sum;
    }

  private:
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> value{0};
    };
    Slot slots_[ThreadSlot::kThreadSlots];
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

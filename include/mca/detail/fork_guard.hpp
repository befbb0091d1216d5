#pragma once

// fork(): a child inherits the memory of the client's objects but none of their threads, and
// the client's sockets (and TLS sessions) are shared with the parent. A ForkGuard tells an
// object that it is now in another process image, so that it refuses work at once instead of
// waiting for a thread that does not exist, and so that its destructor neither joins that
// thread nor closes the parent's connections. What such an object must neither use nor destroy
// goes to `abandonInChild`.

#include "../version.hpp"

#include <pthread.h>

#include <atomic>
#include <new>
#include <type_traits>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// How many fork()s lie between the process that started and this one: 0 in the original
/// process, incremented in each child by a pthread_atfork handler.
inline std::atomic<unsigned long>& forkGeneration() noexcept {
    static std::atomic<unsigned long> generation{0};
    return generation;
}

/// Registers the child handler once per process (a function-local static: thread-safe, and never
/// registered by a program that creates no client).
inline void installForkHandler() noexcept {
    static const int registered =
        pthread_atfork(nullptr, nullptr, [] { forkGeneration().fetch_add(1, std::memory_order_relaxed); });
    (void)registered;  // ENOMEM only: the guard then never fires, as before it existed
}

/// Remembers the process image an object was created in; `inChild()` is one relaxed load.
class ForkGuard {
  public:
    ForkGuard() noexcept : generation_((installForkHandler(), forkGeneration().load(std::memory_order_relaxed))) {}

    /// True in a fork() child of the process that created this object.
    bool inChild() const noexcept { return forkGeneration().load(std::memory_order_relaxed) != generation_; }

  private:
    unsigned long generation_;
};

namespace fork_detail {
struct Abandoned {
    virtual ~Abandoned() = default;
    Abandoned* next = nullptr;
};
template <class T>
struct AbandonedObject final : Abandoned {
    explicit AbandonedObject(T&& value) : object(std::move(value)) {}
    T object;
};
inline std::atomic<Abandoned*>& abandonedList() noexcept {
    static std::atomic<Abandoned*> head{nullptr};
    return head;
}
}  // namespace fork_detail

/// Keeps `object` alive and untouched until the process ends: for what a fork() child inherits
/// but must not destroy (a std::thread whose thread does not exist here, a libcurl handle whose
/// connections belong to the parent, state another thread was changing when fork() struck).
/// Never destroyed, but reachable from a static list, so leak checkers do not report it.
template <class T>
void abandonInChild(T&& object) noexcept {
    static_assert(!std::is_lvalue_reference_v<T>, "abandonInChild takes what it keeps: pass std::move(x)");
    using Value = std::remove_cv_t<T>;
    try {
        auto* node = new fork_detail::AbandonedObject<Value>(std::move(object));
        auto& head = fork_detail::abandonedList();
        node->next = head.load(std::memory_order_relaxed);
        while (!head.compare_exchange_weak(node->next, node, std::memory_order_release, std::memory_order_relaxed)) {
        }
    } catch (...) {  // out of memory: leak the object where it is rather than destroy it
        alignas(Value) static unsigned char fallback[sizeof(Value)];
        new (fallback) Value(std::move(object));  // a later one overwrites it, still undestroyed
    }
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

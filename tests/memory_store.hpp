#pragma once

// A TokenStore in this process's memory, for fleet tests that need no Redis.

#include <mca/auth_client.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace mca::test {

/// A store kept in this process's memory, with a fixed cost per call and switchable faults: the
/// seam a fleet's store plugs into, exercised without Redis.
class MemoryStore final : public TokenStore {
  public:
    std::chrono::milliseconds callCost{0};
    std::atomic<bool> throwing{false};          // every method throws
    std::atomic<bool> leaseHeldForever{false};  // tryLease always answers HeldElsewhere
    std::atomic<int> calls{0};

    std::optional<std::string> get(const std::string& name) override {
        call();
        std::lock_guard lock(mutex_);
        const auto found = values_.find(name);
        if (found == values_.end()) return std::nullopt;
        return found->second;
    }
    void put(const std::string& name, const std::string& value, std::chrono::milliseconds) override {
        call();
        std::lock_guard lock(mutex_);
        values_[name] = value;
    }
    Lease tryLease(const std::string& name, const std::string& holder, std::chrono::milliseconds) override {
        call();
        if (leaseHeldForever) return Lease::HeldElsewhere;
        std::lock_guard lock(mutex_);
        return values_.emplace(name, holder).second ? Lease::Acquired : Lease::HeldElsewhere;
    }
    void releaseLease(const std::string& name, const std::string& holder) override { removeIfEqual(name, holder); }
    bool renewLease(const std::string& name, const std::string& holder, std::chrono::milliseconds) override {
        call();
        std::lock_guard lock(mutex_);
        const auto found = values_.find(name);
        return found != values_.end() && found->second == holder;
    }
    void removeIfEqual(const std::string& name, const std::string& value) override {
        call();
        std::lock_guard lock(mutex_);
        const auto found = values_.find(name);
        if (found != values_.end() && found->second == value) values_.erase(found);
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return values_.size();
    }

  private:
    void call() {
        ++calls;
        if (throwing) throw std::runtime_error("store offline (test)");
        if (callCost.count() > 0) std::this_thread::sleep_for(callCost);
    }
    mutable std::mutex mutex_;
    std::map<std::string, std::string> values_;
};

}  // namespace mca::test

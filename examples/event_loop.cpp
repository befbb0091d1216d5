// For event-loop back ends (Asio, libuv, drogon...): the callback API never blocks a thread.
// The handler runs inline on a cache hit and on the client's engine thread otherwise, so it only
// hands the result back to the loop. Also shows invalidate() after a 401 from the protected
// service, and forwarding an incoming request's token downstream.

#include <mca/auth_client.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>

// A stand-in for the application's event loop: a queue of tasks run on one thread.
class EventLoop {
  public:
    void post(std::function<void()> task) {
        std::lock_guard lock(mutex_);
        tasks_.push_back(std::move(task));
        ready_.notify_one();
    }
    void runOne() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !tasks_.empty(); });
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
    }

  private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> tasks_;
};

int main() {
    EventLoop loop;
    mca::AuthClient client;  // default credentials from VCAP_SERVICES

    client.getAuthorizationHeader([&loop](std::string header, std::exception_ptr error) {
        loop.post([header = std::move(header), error] {
            if (error) {
                try {
                    std::rethrow_exception(error);
                } catch (const mca::Error& e) {
                    std::cerr << "no token: " << e.what() << "\n";
                }
                return;
            }
            std::cout << "sending the request with a header of " << header.size() << " bytes\n";
        });
    });
    loop.runOne();

    // The protected service answered 401: its token was revoked early. Drop it; the next call
    // fetches a new one.
    mca::Credentials tenant{"appId", "clientId", "secret", "https://imf-authserver.ng.bluemix.net/imf-authserver"};
    client.invalidate(tenant);

    // Forward the caller's own token downstream, only if it is a well-formed Bearer header.
    if (const auto forwarded = mca::forwardableAuthorization("Bearer eyJhbGciOi.eyJleHAiOjF9.c2ln")) {
        std::cout << "forwarding: " << forwarded->substr(0, 20) << "...\n";
    }
    return 0;
}

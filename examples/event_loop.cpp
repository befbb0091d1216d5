// For event-loop back ends (Asio, libuv, drogon...): the callback API never blocks a thread.
// The handler runs inline on a cache hit and on the client's engine thread otherwise, so it only
// hands the result back to the loop. Also shows a tenant handle for hot paths, invalidate()
// after a 401 from the protected service, and forwarding an incoming request's token downstream.

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

    // Hot paths resolve a tenant once: each call is then one lookup and one copy, however large
    // the credentials (a certificate and its key, say).
    const mca::Tenant tenant = client.tenant(
        mca::Credentials{"appId", "clientId", "secret", "https://imf-authserver.ng.bluemix.net/imf-authserver"});

    // The protected service answered 401 to a header: its token was revoked early. Retire exactly
    // that token; a hundred requests refused with it cause one new fetch, not a hundred.
    const std::string refusedHeader = "Bearer revoked.token.value";
    client.invalidate(tenant, refusedHeader);

    // Forward the caller's own token downstream, only if it is a well-formed Bearer header.
    if (const auto forwarded = mca::forwardableAuthorization("Bearer eyJhbGciOi.eyJleHAiOjF9.c2ln")) {
        std::cout << "forwarding: " << forwarded->substr(0, 20) << "...\n";
    }
    return 0;
}

#pragma once

// For the fleet tests: starting processes, and a redis-server of the test's own on a loopback
// port. Shared by fleet_test.cpp and redis_store_test.cpp.

#include <mca/redis_token_store.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mca::test {

inline std::uint16_t freeLoopbackPort() {
    const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(probe);
    return ntohs(address.sin_port);
}

inline pid_t spawn(const std::vector<std::string>& arguments, const std::string& output,
                   std::vector<std::string> environment) {
    std::vector<char*> argv;
    for (const auto& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
    argv.push_back(nullptr);
    for (char** variable = environ; *variable != nullptr; ++variable) environment.emplace_back(*variable);
    std::vector<char*> envp;
    for (auto& variable : environment) envp.push_back(variable.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (output + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = -1;
    const int result = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (result != 0) throw std::runtime_error("cannot start " + arguments[0]);
    return pid;
}

inline int waitFor(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// A redis-server of our own on a loopback port, without persistence.
class RedisProcess {
  public:
    /// `extraArguments` are added to redis-server's command line (e.g. ACL users).
    explicit RedisProcess(std::string password = "", std::vector<std::string> extraArguments = {})
        : port_(freeLoopbackPort()), password_(std::move(password)), extraArguments_(std::move(extraArguments)) {
        start();
    }
    ~RedisProcess() { stop(); }

    void start() {
        std::vector<std::string> arguments = {
            MCA_TEST_REDIS_SERVER, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
            "--appendonly",        "no"};
        if (!password_.empty()) arguments.insert(arguments.end(), {"--requirepass", password_});
        arguments.insert(arguments.end(), extraArguments_.begin(), extraArguments_.end());
        pid_ =
            spawn(arguments,
                  (std::filesystem::temp_directory_path() / ("redis-" + std::to_string(port_) + ".log")).string(), {});
        const auto store = RedisTokenStore::connect(url() + "?timeout=200");
        for (int i = 0; i < 100; ++i) {
            if (store->tryLease("ready-probe", "x", std::chrono::milliseconds(10)) != TokenStore::Lease::Unavailable) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("redis-server did not start");
    }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitFor(pid_);
            pid_ = -1;
        }
    }
    std::string url() const {
        return "redis://" + (password_.empty() ? "" : ":" + password_ + "@") + "127.0.0.1:" + std::to_string(port_);
    }

    std::uint16_t port() const { return port_; }

  private:
    std::uint16_t port_;
    std::string password_;
    std::vector<std::string> extraArguments_;
    pid_t pid_ = -1;
};

}  // namespace mca::test

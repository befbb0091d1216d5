#pragma once

// Running a piece of a test in a fork()ed child, with a bound on how long the parent waits.

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace mca::test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

/// What runInChild returns when the child did not exit within its bound (it was then killed).
inline constexpr int kChildHung = -1;

/// Forks; the child runs `child` and leaves with _exit(its result) (98 if it threw). The parent
/// waits at most `bound` and returns the child's exit code, 128 + the signal that ended it, or
/// kChildHung. Call it while no other thread of the test holds a lock the child needs.
inline int runInChild(const std::function<int()>& child, std::chrono::milliseconds bound) {
    const pid_t pid = ::fork();
    if (pid < 0) return -2;
    if (pid == 0) {
        int code = 98;
        try {
            code = child();
        } catch (...) {
        }
        ::_exit(code);
    }
    const auto deadline = std::chrono::steady_clock::now() + bound;
    int status = 0;
    for (;;) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (done < 0 || std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return kChildHung;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -3;
}

}  // namespace mca::test

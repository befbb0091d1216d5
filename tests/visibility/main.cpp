// Error codes made in two shared libraries built with hidden visibility, compared here (built
// the same way): equal only if the three share one error category object.
#include "sides.hpp"

#include <mca/error.hpp>

#include <cstdio>

namespace {
int failures = 0;

void check(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++failures;
}
}  // namespace

int main() {
    const std::error_code a = side_a::timeout();
    const std::error_code b = side_b::timeout();
    check(&a.category() == &b.category(), "the two libraries return the same category object");
    check(&a.category() == &mca::errorCategory(), "the program has that object too");
    check(a == b, "their error codes compare equal");
    check(side_a::isTimeout(b) && side_b::isTimeout(a), "each library recognises the other's code as Timeout");
    check(a == mca::Errc::Timeout && b == mca::Errc::Timeout, "the program recognises both as Timeout");
    try {
        side_b::throwTimeout();
    } catch (const mca::Error& e) {
        check(e.code() == mca::Errc::Timeout && side_a::isTimeout(e.code()),
              "an mca::Error thrown in one library is caught as mca::Error and its code compared");
    } catch (...) {
        check(false, "an mca::Error thrown in one library is caught as mca::Error");
    }
    return failures == 0 ? 0 : 1;
}

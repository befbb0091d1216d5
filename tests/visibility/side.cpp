// One of the two shared libraries, built with hidden visibility; MCA_SIDE names its namespace.
#include "sides.hpp"

#include <mca/error.hpp>

namespace MCA_SIDE {

std::error_code timeout() { return mca::make_error_code(mca::Errc::Timeout); }

bool isTimeout(const std::error_code& code) { return code == mca::Errc::Timeout; }

void throwTimeout() { throw mca::Error(mca::Errc::Timeout, "thrown from a hidden-visibility library"); }

}  // namespace MCA_SIDE

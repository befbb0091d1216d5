// Fuzzes the body of a token server's reply: parseTokenReply (a 200), tokenLifetime (what the
// cache believes) and describeErrorBody (what goes into an error message for any other status).
// The input is the raw HTTP body.

#include <mca/detail/redaction.hpp>
#include <mca/detail/token_reply.hpp>

#include "fuzz_check.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using mca::detail::kMaxTokenLifetime;
using mca::detail::Seconds;
using mca::detail::SystemTime;

bool withinMaxLifetime(Seconds lifetime) { return lifetime >= Seconds{0} && lifetime <= kMaxTokenLifetime; }

void checkLifetimes(const mca::detail::TokenReply& reply) {
    // A fixed "now" keeps every run reproducible; the Date header is absent, at the epoch (the
    // earliest parseHttpDate lets through), equal to now, or a day behind it (a skewed clock).
    const SystemTime now = std::chrono::system_clock::from_time_t(1717243200);  // 2024-06-01
    const std::optional<SystemTime> dates[] = {std::nullopt, SystemTime{}, now, now - std::chrono::hours(24)};
    for (const auto& date : dates) {
        const auto lifetime = mca::detail::tokenLifetime(reply, date, now);
        if (lifetime) MCA_FUZZ_CHECK(withinMaxLifetime(*lifetime));
    }
}

void checkErrorDescription(std::string_view body) {
    // Goes verbatim into an exception message and logs: short, and printable ASCII only.
    const std::string described = mca::detail::describeErrorBody(body, {});
    MCA_FUZZ_CHECK(described.size() < 500);
    for (const char c : described) {
        const auto byte = static_cast<unsigned char>(c);
        MCA_FUZZ_CHECK(byte >= 0x20 && byte < 0x7F);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);

    // InvalidReply is the documented way to refuse a body; any other exception escapes to
    // libFuzzer, which reports it as a crash (it would escape the engine thread too).
    try {
        const auto reply = mca::detail::parseTokenReply(body);
        // The token goes into an Authorization header: it must be non-empty and header-safe.
        MCA_FUZZ_CHECK(!reply.accessToken.empty());
        MCA_FUZZ_CHECK(mca::detail::isHeaderSafeToken(reply.accessToken));
        if (reply.expiresIn) MCA_FUZZ_CHECK(withinMaxLifetime(*reply.expiresIn));
        if (reply.jwtExp) MCA_FUZZ_CHECK(*reply.jwtExp >= 0);
        checkLifetimes(reply);
    } catch (const mca::detail::InvalidReply&) {
    }

    checkErrorDescription(body);
    return 0;
}

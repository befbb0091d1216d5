#pragma once

// Secrets held in memory, wiped when released; the keyed digest that stands for them in cache
// keys; randomness for jitter.

#include "../version.hpp"
#include "handles.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Wipes a plain string that held a secret (e.g. a copy the caller handed over by value).
inline void wipeString(std::string& value) noexcept {
    if (value.capacity() > 0) OPENSSL_cleanse(value.data(), value.capacity());
    value.clear();
}

/// A string whose bytes are wiped with OPENSSL_cleanse when it is destroyed or reassigned.
/// Small strings live inside std::string itself, so the wipe covers both storage cases.
class SecretString {
  public:
    SecretString() = default;
    explicit SecretString(std::string_view value) : value_(value) {}
    SecretString(const SecretString& other) : value_(other.value_) {}
    /// Takes the other's storage (no allocation, hence noexcept). A short string lives in the
    /// string object itself and is copied by the move: the source's buffer is wiped after it.
    SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
    SecretString& operator=(SecretString other) noexcept {
        wipe();
        value_.swap(other.value_);
        return *this;
    }
    ~SecretString() { wipe(); }

    const std::string& view() const noexcept { return value_; }
    /// For building a secret in place: what is appended here is wiped with the rest.
    std::string& buffer() noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

    void wipe() noexcept;

  private:
    std::string value_;
};

inline void SecretString::wipe() noexcept { wipeString(value_); }

/// A uniform number in [0, 1) from this thread's generator, for jitter.
inline double randomUnit() {
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

/// A 128-bit keyed digest (SipHash-2-4 with 128-bit output) over length-prefixed fields, so
/// that ("ab","c") and ("a","bc") never share a digest. It names cache entries: the key is drawn
/// at random once per process, so nobody without it can make two credentials collide.
///
/// Why not SHA-256: a cache hit computes this digest for the tenant it is given, and OpenSSL 3's
/// EVP digests allocate on every initialisation and cost several times more than the rest of a
/// hit. SipHash is a PRF built for exactly this (keyed hashing of attacker-influenced input);
/// the unit tests check this implementation against OpenSSL's EVP_MAC "SIPHASH".
class KeyedDigest {
  public:
    using Value = std::array<std::uint8_t, 16>;

    explicit KeyedDigest(const std::array<std::uint8_t, 16>& key) : key_(key) {}
    KeyedDigest(const KeyedDigest&) = delete;
    KeyedDigest& operator=(const KeyedDigest&) = delete;
    ~KeyedDigest() {
        wipeString(buffer_);
        OPENSSL_cleanse(key_.data(), key_.size());
    }

    KeyedDigest& field(std::string_view bytes) {
        const std::uint64_t size = bytes.size();
        char length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(size >> (8 * i));
        buffer_.append(length, sizeof length).append(bytes);
        return *this;
    }

    /// The digest of the fields given so far; then starts over. Fields may be secrets: the
    /// buffer is wiped, and keeps its capacity so that the next digest does not allocate.
    Value finish() {
        const Value digest = sipHash128(key_, buffer_);
        OPENSSL_cleanse(buffer_.data(), buffer_.size());
        buffer_.clear();
        return digest;
    }

    /// This thread's digest object, keyed with the process key.
    static KeyedDigest& forThisThread() {
        thread_local KeyedDigest digest(processKey());
        return digest;
    }

    /// SipHash-2-4 with 128-bit output, as specified by Aumasson and Bernstein.
    static Value sipHash128(const std::array<std::uint8_t, 16>& key, std::string_view message) {
        const auto load64 = [](const std::uint8_t* bytes, std::size_t count) {
            std::uint64_t value = 0;
            for (std::size_t i = 0; i < count; ++i) value |= std::uint64_t(bytes[i]) << (8 * i);
            return value;
        };
        const auto rotl = [](std::uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); };
        const std::uint64_t k0 = load64(key.data(), 8), k1 = load64(key.data() + 8, 8);
        std::uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL ^ 0xee,
                      v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
        const auto rounds = [&](int count) {
            for (int r = 0; r < count; ++r) {
                v0 += v1;
                v1 = rotl(v1, 13);
                v1 ^= v0;
                v0 = rotl(v0, 32);
                v2 += v3;
                v3 = rotl(v3, 16);
                v3 ^= v2;
                v0 += v3;
                v3 = rotl(v3, 21);
                v3 ^= v0;
                v2 += v1;
                v1 = rotl(v1, 17);
                v1 ^= v2;
                v2 = rotl(v2, 32);
            }
        };
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(message.data());
        const std::size_t whole = message.size() / 8 * 8;
        for (std::size_t at = 0; at < whole; at += 8) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            std::uint64_t block;  // the little-endian word load64 would assemble byte by byte
            std::memcpy(&block, bytes + at, sizeof block);
#else
            const std::uint64_t block = load64(bytes + at, 8);
#endif
            v3 ^= block;
            rounds(2);
            v0 ^= block;
        }
        const std::uint64_t last =
            (std::uint64_t(message.size() & 0xff) << 56) | load64(bytes + whole, message.size() - whole);
        v3 ^= last;
        rounds(2);
        v0 ^= last;
        Value out{};
        v2 ^= 0xee;
        rounds(4);
        const std::uint64_t first = v0 ^ v1 ^ v2 ^ v3;
        v1 ^= 0xdd;
        rounds(4);
        const std::uint64_t second = v0 ^ v1 ^ v2 ^ v3;
        for (int i = 0; i < 8; ++i) {
            out[i] = static_cast<std::uint8_t>(first >> (8 * i));
            out[8 + i] = static_cast<std::uint8_t>(second >> (8 * i));
        }
        return out;
    }

  private:
    static const std::array<std::uint8_t, 16>& processKey() {
        static const std::array<std::uint8_t, 16> key = [] {
            std::array<std::uint8_t, 16> random{};
            if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
                throw std::runtime_error("mca: no randomness for the cache key");
            }
            return random;
        }();
        return key;
    }

    std::array<std::uint8_t, 16> key_;
    std::string buffer_;
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

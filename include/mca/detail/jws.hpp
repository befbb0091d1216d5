#pragma once

// Asymmetric client authentication at an OAuth 2.0 token endpoint: the private_key_jwt signing
// key and its client assertions (RFC 7523, OpenID Connect Core §9; JWS compact form, RFC 7515,
// algorithms of RFC 7518 §3), and the up-front check of a tls_client_auth identity (RFC 8705).
// OpenSSL 3 EVP APIs, every handle owned by RAII. A SigningKey is immutable once built: any
// thread may sign with it, each signature using its own EVP_MD_CTX.

#include "../error.hpp"
#include "../version.hpp"
#include "encoding.hpp"
#include "handles.hpp"
#include "pem.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

enum class JwsAlgorithm { RS256, PS256, ES256 };

inline const char* jwsAlgorithmName(JwsAlgorithm algorithm) noexcept {
    switch (algorithm) {
        case JwsAlgorithm::RS256:
            return "RS256";
        case JwsAlgorithm::PS256:
            return "PS256";
        case JwsAlgorithm::ES256:
            return "ES256";
    }
    return "RS256";
}

inline void requireKeyOfCertificate(X509* certificate, EVP_PKEY* key) {
    if (X509_check_private_key(certificate, key) != 1) {
        ERR_clear_error();
        throw Error(Errc::InvalidCertificate, "privateKeyPem does not belong to certificatePem");
    }
}

/// The certificate's SHA-256 thumbprint as JWS's `x5t#S256` writes it (RFC 7515 §4.1.8):
/// base64url of the digest of its DER encoding.
inline std::string certificateThumbprintS256(X509* certificate) {
    unsigned char* der = nullptr;
    const int length = i2d_X509(certificate, &der);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digestLength = 0;
    const bool hashed = length > 0 && EVP_Digest(der, static_cast<std::size_t>(length), digest.data(), &digestLength,
                                                 EVP_sha256(), nullptr) == 1;
    OPENSSL_free(der);
    if (!hashed) {
        ERR_clear_error();
        throw Error(Errc::InvalidCertificate, "the certificate cannot be encoded");
    }
    return base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digestLength));
}

/// A private_key_jwt signing key, parsed and checked once per tenant; thread-safe to sign with
/// from any thread (const).
class SigningKey {
  public:
    /// privateKeyPem: unencrypted PEM (PKCS#8 or traditional), RSA >= 2048 bits or EC P-256.
    /// certificatePem: optional; when set it must hold the key's certificate, and adds the
    /// `x5t#S256` header. signingAlg: "" for the key type's default (RSA: RS256, EC: ES256), else
    /// exactly "RS256", "PS256" or "ES256".
    /// @throws Error MissingPem (no key), InvalidCertificate (an unreadable, encrypted, weak or
    /// unsupported key; an unreadable or foreign certificate), InvalidConfiguration (an unknown
    /// algorithm, or one that does not fit the key). Messages never contain key material.
    SigningKey(std::string_view privateKeyPem, std::string_view certificatePem, std::string_view signingAlg) {
        if (trimWhitespace(privateKeyPem).empty()) {
            throw Error(Errc::MissingPem, "privateKeyPem is empty (private_key_jwt signs with it)");
        }
        const bool defaultAlgorithm = signingAlg.empty();
        if (!defaultAlgorithm) algorithm_ = parseAlgorithm(signingAlg);
        key_ = readUnencryptedPrivateKey(privateKeyPem);
        const bool rsa = EVP_PKEY_is_a(key_.get(), "RSA") == 1;
        if (rsa) {
            // RFC 7518 §3.3: a key of 2048 bits or more.
            const int bits = EVP_PKEY_get_bits(key_.get());
            if (bits < 2048) {
                throw Error(Errc::InvalidCertificate, "privateKeyPem is an RSA key of " + std::to_string(bits) +
                                                          " bits; private_key_jwt needs 2048 bits or more");
            }
        } else if (EVP_PKEY_is_a(key_.get(), "EC") == 1) {
            const std::string curve = curveName(key_.get());
            if (curve != "prime256v1" && curve != "P-256") {
                throw Error(Errc::InvalidCertificate, "privateKeyPem is an EC key on " +
                                                          (curve.empty() ? std::string("an unnamed curve") : curve) +
                                                          "; ES256 needs P-256 (prime256v1)");
            }
        } else {
            const char* type = EVP_PKEY_get0_type_name(key_.get());
            throw Error(Errc::InvalidCertificate, std::string("privateKeyPem is a ") + (type ? type : "unknown") +
                                                      " key; private_key_jwt signs with RSA or EC P-256 keys");
        }
        if (defaultAlgorithm) {
            algorithm_ = rsa ? JwsAlgorithm::RS256 : JwsAlgorithm::ES256;
        } else if (rsa ? algorithm_ == JwsAlgorithm::ES256 : algorithm_ != JwsAlgorithm::ES256) {
            throw Error(Errc::InvalidConfiguration, std::string("signingAlg ") + algorithmName() + " does not fit an " +
                                                        (rsa ? "RSA key (use RS256 or PS256)" : "EC key (use ES256)"));
        }
        if (!trimWhitespace(certificatePem).empty()) {
            const X509Ptr certificate = readLeafCertificate(certificatePem, false);
            requireKeyOfCertificate(certificate.get(), key_.get());
            x5tS256_ = certificateThumbprintS256(certificate.get());
        }
    }

    JwsAlgorithm algorithm() const noexcept { return algorithm_; }
    const char* algorithmName() const noexcept { return jwsAlgorithmName(algorithm_); }

    /// A fresh client assertion (compact JWS), a new one on every call (RFC 7523 §3: the server
    /// may refuse a replayed `jti`). Header: alg, typ, kid (when `keyId` is set), x5t#S256 (when
    /// a certificate was given). Claims: iss = sub = clientId, aud, jti, iat = nbf = now, exp =
    /// iat + 60 (Entra ID asks for nbf).
    std::string clientAssertion(std::string_view clientId, std::string_view audience, std::string_view keyId,
                                std::chrono::system_clock::time_point now) const {
        nlohmann::ordered_json header = {{"alg", algorithmName()}, {"typ", "JWT"}};
        if (!keyId.empty()) header["kid"] = std::string(keyId);
        if (!x5tS256_.empty()) header["x5t#S256"] = x5tS256_;
        const auto issuedAt = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
        const nlohmann::ordered_json claims = {{"iss", std::string(clientId)},
                                               {"sub", std::string(clientId)},
                                               {"aud", std::string(audience)},
                                               {"jti", randomJwtId()},
                                               {"iat", issuedAt},
                                               {"nbf", issuedAt},
                                               {"exp", issuedAt + kAssertionLifetime.count()}};
        std::string signingInput;
        try {
            signingInput = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
        } catch (const nlohmann::json::exception&) {
            // Replacing bad bytes would only get the assertion refused later, for a reason
            // harder to see.
            throw Error(Errc::InvalidConfiguration, "clientId, audience or keyId is not valid UTF-8");
        }
        return signingInput + "." + base64UrlEncode(sign(signingInput));
    }

    /// The raw JWS signature of `signingInput` (RFC 7518 §3): RS256 RSASSA-PKCS1-v1_5/SHA-256;
    /// PS256 RSASSA-PSS/SHA-256, MGF1-SHA-256, 32-byte salt; ES256 ECDSA P-256/SHA-256 as the
    /// 64-byte r||s.
    std::string sign(std::string_view signingInput) const {
        const EvpMdCtxPtr context(EVP_MD_CTX_new());
        EVP_PKEY_CTX* keyContext = nullptr;  // owned by `context`
        if (!context ||
            EVP_DigestSignInit_ex(context.get(), &keyContext, "SHA256", nullptr, nullptr, key_.get(), nullptr) != 1) {
            signingFailed();
        }
        if (algorithm_ == JwsAlgorithm::RS256 && EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PADDING) != 1) {
            signingFailed();
        }
        // RFC 7518 §3.5: the salt is as long as the digest. OpenSSL 3.0 signs with the longest salt
        // the key allows by default (222 bytes for RSA 2048), which verifiers that pin the length
        // (many servers) refuse; so the length is set, not left to the OpenSSL version.
        if (algorithm_ == JwsAlgorithm::PS256 &&
            (EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) != 1 ||
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(keyContext, "SHA256", nullptr) != 1 ||
             EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, kPssSaltLength) != 1)) {
            signingFailed();
        }
        const auto* input = reinterpret_cast<const unsigned char*>(signingInput.data());
        std::size_t size = 0;
        if (EVP_DigestSign(context.get(), nullptr, &size, input, signingInput.size()) != 1) signingFailed();
        std::string signature(size, '\0');
        if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, input,
                           signingInput.size()) != 1) {
            signingFailed();
        }
        signature.resize(size);
        return algorithm_ == JwsAlgorithm::ES256 ? derToRawEcdsa(signature) : signature;
    }

  private:
    static constexpr std::chrono::seconds kAssertionLifetime{60};
    static constexpr int kPssSaltLength = 32;     // SHA-256's digest length
    static constexpr int kEcCoordinateSize = 32;  // P-256: r and s are 32 bytes each

    [[noreturn]] static void signingFailed() {
        ERR_clear_error();
        throw Error(Errc::InvalidCertificate, "signing with privateKeyPem failed");
    }

    static JwsAlgorithm parseAlgorithm(std::string_view name) {
        if (name == "RS256") return JwsAlgorithm::RS256;
        if (name == "PS256") return JwsAlgorithm::PS256;
        if (name == "ES256") return JwsAlgorithm::ES256;
        // Quoted only when short: the field is configuration, but may hold anything.
        const std::string shown = name.size() <= 16 ? " \"" + std::string(name) + "\"" : "";
        throw Error(Errc::InvalidConfiguration, "signingAlg" + shown + " is not supported (RS256, PS256 or ES256)");
    }

    static std::string curveName(EVP_PKEY* key) {
        char name[80] = {};
        std::size_t length = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &length) != 1) {
            ERR_clear_error();  // explicit curve parameters: no name
            return {};
        }
        return std::string(name, length);
    }

    /// JWS wants r||s, each left-padded to the coordinate size (RFC 7518 §3.4); OpenSSL signs
    /// in DER (an ASN.1 SEQUENCE of two INTEGERs).
    static std::string derToRawEcdsa(const std::string& der) {
        const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
        const EcdsaSigPtr parsed(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
        const BIGNUM* r = nullptr;
        const BIGNUM* s = nullptr;
        if (parsed) ECDSA_SIG_get0(parsed.get(), &r, &s);
        std::string raw(2 * kEcCoordinateSize, '\0');
        auto* out = reinterpret_cast<unsigned char*>(raw.data());
        if (!r || !s || BN_bn2binpad(r, out, kEcCoordinateSize) != kEcCoordinateSize ||
            BN_bn2binpad(s, out + kEcCoordinateSize, kEcCoordinateSize) != kEcCoordinateSize) {
            signingFailed();
        }
        return raw;
    }

    /// 128 random bits, base64url: unique per assertion without any shared counter.
    static std::string randomJwtId() {
        std::array<unsigned char, 16> bytes{};
        if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
            ERR_clear_error();
            throw std::runtime_error("mca: no randomness for a client assertion's jti");
        }
        return base64UrlEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }

    EvpPkeyPtr key_;
    JwsAlgorithm algorithm_ = JwsAlgorithm::RS256;
    std::string x5tS256_;  // empty without a certificate
};

/// Checks a tls_client_auth identity before any request, so that a broken one fails with a clear
/// error instead of a TLS alert: both PEMs present, the certificate chain readable, the key
/// unencrypted and readable, and the leaf certificate matching the key. Any key type OpenSSL
/// accepts for TLS. Returns the leaf's x5t#S256 (base64url SHA-256 of its DER), for logs.
inline std::string checkTlsClientIdentity(std::string_view certificatePem, std::string_view privateKeyPem) {
    if (trimWhitespace(certificatePem).empty()) {
        throw Error(Errc::MissingPem, "certificatePem is empty (tls_client_auth presents it in the TLS handshake)");
    }
    if (trimWhitespace(privateKeyPem).empty()) {
        throw Error(Errc::MissingPem, "privateKeyPem is empty (tls_client_auth needs the certificate's key)");
    }
    const X509Ptr leaf = readLeafCertificate(certificatePem, true);
    const EvpPkeyPtr key = readUnencryptedPrivateKey(privateKeyPem);
    requireKeyOfCertificate(leaf.get(), key.get());
    return certificateThumbprintS256(leaf.get());
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

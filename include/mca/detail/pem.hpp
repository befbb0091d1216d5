#pragma once

// Reading PEM keys and certificates from memory, for the certificate flow, private_key_jwt and
// tls_client_auth: typed errors that never quote the PEM, and no passphrase prompt, ever.

#include "../error.hpp"
#include "../version.hpp"
#include "handles.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

inline BioPtr pemMemoryBio(std::string_view pem, const char* field) {
    // BIO_new_mem_buf takes an int length, and -1 would mean "up to the first NUL".
    if (pem.size() > static_cast<std::size_t>(INT_MAX)) {
        throw Error(Errc::InvalidCertificate, std::string(field) + " is too large");
    }
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) throw Error(Errc::InvalidCertificate, std::string("out of memory reading ") + field);
    return bio;
}

/// Reads an unencrypted PEM private key (PKCS#8 or traditional). An encrypted key is reported as
/// such: the passphrase callback only records that it was asked and fails, so nothing ever
/// prompts on a terminal (OpenSSL's default callback would).
inline EvpPkeyPtr readUnencryptedPrivateKey(std::string_view pem) {
    const BioPtr bio = pemMemoryBio(pem, "privateKeyPem");
    bool askedForPassphrase = false;
    const auto refusePassphrase = [](char*, int, int, void* asked) -> int {
        *static_cast<bool*>(asked) = true;
        return -1;
    };
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassphrase, &askedForPassphrase));
    if (!key) {
        ERR_clear_error();
        if (askedForPassphrase) {
            throw Error(Errc::InvalidCertificate,
                        "privateKeyPem is encrypted; a passphrase-protected key is not supported (decrypt it "
                        "once, e.g. with `openssl pkey -in key.pem -out key-plain.pem`, and keep that secret)");
        }
        throw Error(Errc::InvalidCertificate, "privateKeyPem holds no readable PEM private key");
    }
    return key;
}

/// The first certificate of a PEM (the leaf of a chain). With `wholeChain`, every further
/// certificate must be readable too, as the TLS handshake will send them.
inline X509Ptr readLeafCertificate(std::string_view pem, bool wholeChain) {
    const BioPtr bio = pemMemoryBio(pem, "certificatePem");
    X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        ERR_clear_error();
        throw Error(Errc::InvalidCertificate, "certificatePem holds no readable PEM certificate");
    }
    for (int position = 2; wholeChain; ++position) {
        const X509Ptr next(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (next) continue;
        // The end of the input reads as "no start line"; anything else is a broken certificate.
        const unsigned long error = ERR_peek_last_error();
        ERR_clear_error();
        if (ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE) break;
        throw Error(Errc::InvalidCertificate,
                    "certificatePem: certificate " + std::to_string(position) + " of the chain is unreadable");
    }
    return leaf;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END

#pragma once

// Client certificates made at test time with the OpenSSL API: an RSA key and a self-signed
// certificate for a chosen subject CN (or none), as PEM strings.

#include <mca/auth_client.hpp>
#include <mca/detail/handles.hpp>  // also with MCA_OAUTH_SEPARATE_COMPILATION

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <string>

namespace mca::test {

struct PemPair {
    std::string certificatePem;
    std::string privateKeyPem;
};

inline std::string pemOf(int (*write)(BIO*, void*), void* object) {
    const detail::BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get(), object) != 1) throw std::runtime_error("PEM encoding failed");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

inline detail::EvpPkeyPtr makeKey(const char* algorithm = "RSA") {
    detail::EvpPkeyPtr key(std::string(algorithm) == "RSA" ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
    if (!key) throw std::runtime_error("key generation failed");
    return key;
}

inline std::string privateKeyPem(EVP_PKEY* key) {
    return pemOf(
        [](BIO* bio, void* object) {
            return PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(object), nullptr, nullptr, 0, nullptr, nullptr);
        },
        key);
}

/// A self-signed certificate for `key`; an empty `commonName` leaves the subject without a CN.
inline std::string certificatePem(EVP_PKEY* key, const std::string& commonName) {
    const detail::X509Ptr certificate(X509_new());
    X509_set_version(certificate.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
    X509_set_pubkey(certificate.get(), key);
    X509_NAME* name = X509_get_subject_name(certificate.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mca-oauth tests"), -1,
                               -1, 0);
    if (!commonName.empty()) {
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(commonName.c_str()), -1, -1, 0);
    }
    X509_set_issuer_name(certificate.get(), name);
    if (X509_sign(certificate.get(), key, EVP_sha256()) == 0) throw std::runtime_error("signing failed");
    return pemOf([](BIO* bio, void* object) { return PEM_write_bio_X509(bio, static_cast<X509*>(object)); },
                 certificate.get());
}

inline PemPair makeClientCertificate(const std::string& commonName, const char* algorithm = "RSA") {
    const auto key = makeKey(algorithm);
    return {certificatePem(key.get(), commonName), privateKeyPem(key.get())};
}

}  // namespace mca::test

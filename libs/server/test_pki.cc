#include "libs/server/test_pki.h"

#include <glog/logging.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>

namespace tongka::server::testing {
namespace {

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size);
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  CHECK_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::string pem = BioToString(bio);
  BIO_free(bio);
  return pem;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  CHECK_EQ(PEM_write_bio_X509(bio, cert), 1);
  std::string pem = BioToString(bio);
  BIO_free(bio);
  return pem;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  CHECK(extension != nullptr) << "extension " << OBJ_nid2sn(nid) << "=" << value;
  CHECK_EQ(X509_add_ext(cert, extension, -1), 1);
  X509_EXTENSION_free(extension);
}

// A certificate for `key` with subject CN=`common_name`; issuer fields filled by the caller.
X509* NewCert(EVP_PKEY* key, const std::string& common_name, long serial) {
  X509* cert = X509_new();
  CHECK(cert != nullptr);
  CHECK_EQ(X509_set_version(cert, 2), 1);  // v3
  CHECK_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial), 1);
  CHECK(X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr);
  CHECK(X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != nullptr);
  CHECK_EQ(X509_set_pubkey(cert, key), 1);
  X509_NAME* name = X509_get_subject_name(cert);
  CHECK_EQ(
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("Tongka test"), -1, -1, 0),
      1);
  CHECK_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                      -1, -1, 0),
           1);
  return cert;
}

}  // namespace

TestCa::TestCa(const std::string& name) {
  ca_key_ = EVP_EC_gen("P-256");
  CHECK(ca_key_ != nullptr) << ERR_error_string(ERR_get_error(), nullptr);
  X509* cert = NewCert(ca_key_, name, 1);
  CHECK_EQ(X509_set_issuer_name(cert, X509_get_subject_name(cert)), 1);
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  CHECK_GT(X509_sign(cert, ca_key_, EVP_sha256()), 0);
  ca_.cert_pem = CertPem(cert);
  ca_.key_pem = KeyPem(ca_key_);
  X509_free(cert);
}

TestCa::~TestCa() { EVP_PKEY_free(ca_key_); }

Credential TestCa::Issue(const std::string& common_name, bool server) {
  BIO* bio = BIO_new_mem_buf(ca_.cert_pem.data(), static_cast<int>(ca_.cert_pem.size()));
  X509* ca_cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  CHECK(ca_cert != nullptr);

  EVP_PKEY* key = EVP_EC_gen("P-256");
  CHECK(key != nullptr);
  X509* cert = NewCert(key, common_name, next_serial_++);
  CHECK_EQ(X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)), 1);
  AddExtension(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, ca_cert, NID_key_usage, "critical,digitalSignature,keyAgreement");
  AddExtension(cert, ca_cert, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  AddExtension(cert, ca_cert, NID_authority_key_identifier, "keyid:always");
  if (server) AddExtension(cert, ca_cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  CHECK_GT(X509_sign(cert, ca_key_, EVP_sha256()), 0);

  Credential credential{CertPem(cert), KeyPem(key)};
  X509_free(cert);
  X509_free(ca_cert);
  EVP_PKEY_free(key);
  return credential;
}

std::string WriteTestFile(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  CHECK(dir != nullptr) << "TEST_TMPDIR is not set (run under bazel test)";
  const std::string path = std::string(dir) + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  CHECK(out.good()) << "cannot write " << path;
  return path;
}

}  // namespace tongka::server::testing

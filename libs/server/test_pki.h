// Test-only: a throwaway certificate authority that issues server and client certificates with
// the OpenSSL API, so mTLS tests need no fixtures on disk and no openssl binary.
//
// Ownership: values (PEM strings). Thread-safety: thread-compatible.
// Failure behaviour: CHECK-fails on any OpenSSL error (tests only).
//
// Example:
//   tongka::server::testing::TestCa ca("Tongka test CA");
//   tongka::server::testing::Credential server = ca.Issue("localhost", /*server=*/true);
//   tongka::server::testing::Credential client = ca.Issue("city:310000", /*server=*/false);
#ifndef TONGKA_LIBS_SERVER_TEST_PKI_H_
#define TONGKA_LIBS_SERVER_TEST_PKI_H_

#include <openssl/evp.h>

#include <memory>
#include <string>

namespace tongka::server::testing {

struct Credential {
  std::string cert_pem;
  std::string key_pem;
};

class TestCa {
 public:
  // A self-signed CA (EC P-256, valid from an hour ago for a day) with subject CN=`name`.
  explicit TestCa(const std::string& name);
  ~TestCa();

  const std::string& cert_pem() const { return ca_.cert_pem; }

  // A leaf certificate with subject CN=`common_name`, signed by this CA. Server certificates
  // carry subjectAltName DNS:localhost, IP:127.0.0.1 and serverAuth; client ones clientAuth.
  Credential Issue(const std::string& common_name, bool server);

 private:
  Credential ca_;
  EVP_PKEY* ca_key_ = nullptr;
  long next_serial_ = 2;
};

// Writes `contents` to $TEST_TMPDIR/<name> and returns the path.
std::string WriteTestFile(const std::string& name, const std::string& contents);

}  // namespace tongka::server::testing

#endif  // TONGKA_LIBS_SERVER_TEST_PKI_H_

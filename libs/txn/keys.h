// Key material for terminal MACs: the per-city master keys and the per-terminal SM4 keys derived
// from them, shared by ingest (which verifies MACs) and tools/tapgen (which computes them).
//
// What it is: each member city holds one SM4 master key; a terminal's MAC key is
// crypto::DeriveTerminalKey(master key of the acquirer city, terminal id) (libs/crypto
// terminal_key.h). A CityKeyring maps city codes to master keys and derives terminal keys on
// demand, caching them because ingest needs one per transaction at up to 100k transactions/s
// while a derivation costs a few microseconds of OpenSSL work.
//
// Where keys come from:
//   - CityKeyring::FromFile: a text file, one "<city code> <32 hex digits>" line per city, '#'
//     starts a comment, blank lines are ignored. This is how real keys are loaded (the file comes
//     from the secret store and is never checked in).
//   - CityKeyring::Dev / DevCityMasterKey: DEVELOPMENT ONLY. The dev master key of a city is the
//     first 16 bytes of SM3("tongka/dev-city-master-key/v1/" + decimal city code): public, so
//     anyone can forge any dev MAC. Laptops, CI, tests and the load generator use it; production
//     must load a key file.
//
// Ownership: a CityKeyring owns its master keys and its cache; copies share both (the keys are
// immutable, the cache is internally synchronized). Key memory is wiped when the last copy goes.
// Thread-safety: all const methods are thread-safe; TerminalKey may be called from any number of
// threads at once (the cache is sharded behind mutexes).
// Failure behaviour: FromFile returns NOT_FOUND when the file cannot be opened and
// INVALID_ARGUMENT naming "<path>:<line>" for a malformed line, a non-member or duplicate city;
// key bytes never appear in messages. MasterKey/TerminalKey return NOT_FOUND for a city without a
// key; TerminalKey passes on DeriveTerminalKey's INVALID_ARGUMENT for a bad terminal id.
//
// Example:
//   absl::StatusOr<tongka::txn::CityKeyring> keyring = tongka::txn::CityKeyring::Dev();
//   absl::StatusOr<tongka::crypto::Sm4Key> key =
//       keyring->TerminalKey(310000, "310000-BUS-000123");
//   if (!key.ok()) return key.status();
//   bool ok = tongka::crypto::VerifySm4Cmac(*key, *tongka::txn::MacInput(upload), txn.mac());
#ifndef TONGKA_LIBS_TXN_KEYS_H_
#define TONGKA_LIBS_TXN_KEYS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/bytes.h"

namespace tongka::txn {

// The prefix of the dev master key derivation (see above). Changing it changes every dev key.
inline constexpr absl::string_view kDevCityMasterKeyPrefix = "tongka/dev-city-master-key/v1/";

// Derived terminal keys kept per keyring before the cache starts evicting (about 100 bytes each).
inline constexpr size_t kTerminalKeyCacheSizeMax = 1 << 18;

// DEVELOPMENT ONLY: the public dev master key of a member city. NOT_FOUND for a non-member code.
absl::StatusOr<crypto::Sm4Key> DevCityMasterKey(uint32_t city);

class CityKeyring {
 public:
  // DEVELOPMENT ONLY: dev master keys for all 80 member cities.
  static absl::StatusOr<CityKeyring> Dev();

  // Master keys from a key file (format above). At least one key is required.
  static absl::StatusOr<CityKeyring> FromFile(const std::string& path);

  // The same parser over text already in memory; `source` names it in errors (FromFile passes
  // the path).
  static absl::StatusOr<CityKeyring> FromText(absl::string_view text, absl::string_view source);

  // The master key of `city`, or NOT_FOUND.
  absl::StatusOr<crypto::Sm4Key> MasterKey(uint32_t city) const;

  // crypto::DeriveTerminalKey(MasterKey(city), terminal_id), served from the cache when it can.
  absl::StatusOr<crypto::Sm4Key> TerminalKey(uint32_t city, absl::string_view terminal_id) const;

  // The cities this keyring holds keys for, ascending.
  std::vector<uint32_t> Cities() const;

  // The cities whose master key here is their public dev key (DevCityMasterKey), ascending: all of
  // them for Dev(), and any a key file was filled with by mistake. A production server refuses to
  // start when this is not empty, since anyone can forge those cities' MACs.
  std::vector<uint32_t> CitiesWithDevKeys() const;

 private:
  struct Shared;
  explicit CityKeyring(std::map<uint32_t, crypto::Sm4Key> master_keys);

  std::shared_ptr<Shared> shared_;
};

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_KEYS_H_

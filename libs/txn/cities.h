// The member cities of the interop programme: GB/T 2260 codes, names, coordinates, relative sizes.
//
// One table for the whole platform: ingest validates issuer and acquirer cities against it,
// tapgen draws traffic from it, fraud uses the coordinates for impossible travel.
//
// Thread-safety: immutable after first use. Example:
//   const City* shanghai = FindCity(310000);  // nullptr for a non-member code
#ifndef TONGKA_LIBS_TXN_CITIES_H_
#define TONGKA_LIBS_TXN_CITIES_H_

#include <cstdint>
#include <vector>

namespace tongka::txn {

struct City {
  uint32_t code;     // GB/T 2260, e.g. 310000
  const char* name;  // e.g. "Shanghai"
  double latitude;   // degrees
  double longitude;  // degrees
  double weight;     // relative size (ridership share), > 0
};

// All 80 member cities, ordered by code.
const std::vector<City>& MemberCities();

// The member city with this code, or nullptr.
const City* FindCity(uint32_t code);

// Great-circle distance in kilometres.
double DistanceKm(const City& a, const City& b);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_CITIES_H_

// Proves the member city table is what the platform relies on: exactly 80 cities, unique GB/T
// 2260 prefecture-level codes in ascending order, coordinates inside China, positive weights,
// FindCity agreeing with the table, and haversine distances matching known great-circle figures.
#include "libs/txn/cities.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tongka::txn {
namespace {

TEST(CitiesTest, EightyMembersSortedUniqueAndInRange) {
  const std::vector<City>& cities = MemberCities();
  ASSERT_EQ(cities.size(), 80u);
  std::set<uint32_t> codes;
  std::set<std::string> names;
  for (size_t i = 0; i < cities.size(); ++i) {
    const City& city = cities[i];
    SCOPED_TRACE(city.name);
    EXPECT_TRUE(codes.insert(city.code).second) << "duplicate code " << city.code;
    EXPECT_TRUE(names.insert(city.name).second) << "duplicate name";
    if (i > 0) {
      EXPECT_LT(cities[i - 1].code, city.code);
    }
    // Six digits, a province prefix 11..65, and a prefecture-level code (ends in 00).
    EXPECT_GE(city.code, 110000u);
    EXPECT_LE(city.code, 659999u);
    EXPECT_EQ(city.code % 100, 0u);
    EXPECT_GE(city.latitude, 18.0);
    EXPECT_LE(city.latitude, 54.0);
    EXPECT_GE(city.longitude, 73.0);
    EXPECT_LE(city.longitude, 135.0);
    EXPECT_GT(city.weight, 0.0);
  }
}

TEST(CitiesTest, WellKnownCodes) {
  EXPECT_STREQ(FindCity(110000)->name, "Beijing");
  EXPECT_STREQ(FindCity(310000)->name, "Shanghai");
  EXPECT_STREQ(FindCity(120000)->name, "Tianjin");
  EXPECT_STREQ(FindCity(500000)->name, "Chongqing");
  EXPECT_STREQ(FindCity(440100)->name, "Guangzhou");
  EXPECT_STREQ(FindCity(440300)->name, "Shenzhen");
  EXPECT_STREQ(FindCity(330100)->name, "Hangzhou");
  EXPECT_STREQ(FindCity(330200)->name, "Ningbo");
  EXPECT_STREQ(FindCity(320100)->name, "Nanjing");
  EXPECT_STREQ(FindCity(320500)->name, "Suzhou");
  EXPECT_STREQ(FindCity(450200)->name, "Liuzhou");
  EXPECT_STREQ(FindCity(510100)->name, "Chengdu");
  EXPECT_STREQ(FindCity(420100)->name, "Wuhan");
  EXPECT_STREQ(FindCity(610100)->name, "Xi'an");
}

TEST(CitiesTest, FindCityFindsEveryMemberAndNothingElse) {
  for (const City& city : MemberCities()) {
    ASSERT_NE(FindCity(city.code), nullptr);
    EXPECT_EQ(FindCity(city.code)->code, city.code);
  }
  EXPECT_EQ(FindCity(0), nullptr);
  EXPECT_EQ(FindCity(310001), nullptr);  // a district-style code, not a member
  EXPECT_EQ(FindCity(999999), nullptr);
  EXPECT_EQ(FindCity(100000), nullptr);  // below the first member
}

TEST(CitiesTest, HaversineDistances) {
  const City& shanghai = *FindCity(310000);
  const City& beijing = *FindCity(110000);
  EXPECT_NEAR(DistanceKm(shanghai, beijing), 1070.0, 30.0);
  EXPECT_NEAR(DistanceKm(beijing, shanghai), DistanceKm(shanghai, beijing), 1e-9);
  EXPECT_DOUBLE_EQ(DistanceKm(shanghai, shanghai), 0.0);
  // Guangzhou–Shenzhen is about 105 km; Beijing–Urumqi about 2,400 km.
  EXPECT_NEAR(DistanceKm(*FindCity(440100), *FindCity(440300)), 105.0, 15.0);
  EXPECT_NEAR(DistanceKm(beijing, *FindCity(650100)), 2400.0, 60.0);
}

}  // namespace
}  // namespace tongka::txn

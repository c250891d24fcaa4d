#include "libs/txn/cities.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

namespace tongka::txn {
namespace {

// The member cities: GB/T 2260 prefecture-level (or municipality) codes, English names, the
// approximate coordinates of the city centre, and a relative size. Weights are the resident
// population of the prefecture in millions (seventh national census, 2020, rounded); Chongqing
// counts its central urban districts only, since most of its 32 million live far from the
// card-accepting core. Every province-level capital is a member. Kept sorted by code: FindCity
// binary-searches it, and the constructor CHECKs the order.
std::vector<City> BuildTable() {
  std::vector<City> cities = {
      {110000, "Beijing", 39.904, 116.407, 21.9},      {120000, "Tianjin", 39.125, 117.190, 13.9},
      {130100, "Shijiazhuang", 38.042, 114.514, 11.2}, {130200, "Tangshan", 39.630, 118.180, 7.7},
      {130600, "Baoding", 38.874, 115.464, 11.5},      {140100, "Taiyuan", 37.870, 112.549, 5.3},
      {150100, "Hohhot", 40.842, 111.749, 3.4},        {150200, "Baotou", 40.658, 109.840, 2.7},
      {210100, "Shenyang", 41.805, 123.431, 9.1},      {210200, "Dalian", 38.914, 121.614, 7.5},
      {220100, "Changchun", 43.817, 125.324, 9.1},     {230100, "Harbin", 45.803, 126.535, 10.0},
      {230200, "Qiqihar", 47.354, 123.918, 4.1},       {310000, "Shanghai", 31.230, 121.474, 24.9},
      {320100, "Nanjing", 32.060, 118.797, 9.3},       {320200, "Wuxi", 31.491, 120.312, 7.5},
      {320300, "Xuzhou", 34.262, 117.185, 9.1},        {320400, "Changzhou", 31.811, 119.974, 5.3},
      {320500, "Suzhou", 31.299, 120.585, 12.7},       {320600, "Nantong", 31.980, 120.894, 7.7},
      {320700, "Lianyungang", 34.597, 119.222, 4.6},   {321000, "Yangzhou", 32.394, 119.413, 4.6},
      {330100, "Hangzhou", 30.274, 120.155, 12.2},     {330200, "Ningbo", 29.868, 121.544, 9.4},
      {330300, "Wenzhou", 27.994, 120.699, 9.6},       {330400, "Jiaxing", 30.746, 120.756, 5.4},
      {330600, "Shaoxing", 29.998, 120.582, 5.3},      {330700, "Jinhua", 29.079, 119.647, 7.1},
      {331000, "Taizhou", 28.656, 121.421, 6.6},       {340100, "Hefei", 31.821, 117.227, 9.4},
      {340200, "Wuhu", 31.353, 118.433, 3.6},          {350100, "Fuzhou", 26.074, 119.296, 8.3},
      {350200, "Xiamen", 24.480, 118.089, 5.2},        {350500, "Quanzhou", 24.874, 118.676, 8.8},
      {360100, "Nanchang", 28.683, 115.858, 6.3},      {360700, "Ganzhou", 25.831, 114.934, 9.0},
      {370100, "Jinan", 36.651, 117.120, 9.2},         {370200, "Qingdao", 36.067, 120.383, 10.1},
      {370600, "Yantai", 37.464, 121.448, 7.1},        {370700, "Weifang", 36.707, 119.162, 9.4},
      {371000, "Weihai", 37.513, 122.121, 2.8},        {371300, "Linyi", 35.104, 118.356, 11.0},
      {410100, "Zhengzhou", 34.747, 113.625, 12.6},    {410300, "Luoyang", 34.620, 112.454, 7.1},
      {411300, "Nanyang", 32.991, 112.528, 9.7},       {420100, "Wuhan", 30.593, 114.305, 12.3},
      {420500, "Yichang", 30.692, 111.286, 4.0},       {420600, "Xiangyang", 32.009, 112.122, 5.3},
      {430100, "Changsha", 28.228, 112.939, 10.0},     {430200, "Zhuzhou", 27.828, 113.134, 3.9},
      {430600, "Yueyang", 29.357, 113.129, 5.1},       {440100, "Guangzhou", 23.129, 113.264, 18.7},
      {440300, "Shenzhen", 22.543, 114.058, 17.6},     {440400, "Zhuhai", 22.271, 113.577, 2.4},
      {440500, "Shantou", 23.354, 116.682, 5.5},       {440600, "Foshan", 23.022, 113.122, 9.5},
      {440800, "Zhanjiang", 21.271, 110.359, 7.0},     {441300, "Huizhou", 23.112, 114.416, 6.0},
      {441900, "Dongguan", 23.021, 113.752, 10.5},     {442000, "Zhongshan", 22.517, 113.393, 4.4},
      {450100, "Nanning", 22.817, 108.366, 8.7},       {450200, "Liuzhou", 24.326, 109.428, 4.2},
      {450300, "Guilin", 25.274, 110.290, 4.9},        {450500, "Beihai", 21.481, 109.120, 1.9},
      {460100, "Haikou", 20.044, 110.199, 2.9},        {460200, "Sanya", 18.253, 109.512, 1.0},
      {500000, "Chongqing", 29.563, 106.551, 16.0},    {510100, "Chengdu", 30.573, 104.066, 20.9},
      {510500, "Luzhou", 28.872, 105.442, 4.3},        {510700, "Mianyang", 31.468, 104.679, 4.9},
      {520100, "Guiyang", 26.647, 106.630, 6.0},       {520300, "Zunyi", 27.726, 106.927, 6.6},
      {530100, "Kunming", 25.038, 102.718, 8.5},       {540100, "Lhasa", 29.652, 91.172, 0.9},
      {610100, "Xi'an", 34.341, 108.940, 13.0},        {610300, "Baoji", 34.362, 107.238, 3.3},
      {620100, "Lanzhou", 36.061, 103.834, 4.4},       {630100, "Xining", 36.617, 101.778, 2.5},
      {640100, "Yinchuan", 38.487, 106.231, 2.9},      {650100, "Urumqi", 43.825, 87.617, 4.1},
  };
  for (size_t i = 1; i < cities.size(); ++i) {
    CHECK_LT(cities[i - 1].code, cities[i].code) << "the member city table must be sorted by code";
  }
  return cities;
}

}  // namespace

const std::vector<City>& MemberCities() {
  static const std::vector<City>* const kCities = new std::vector<City>(BuildTable());
  return *kCities;
}

const City* FindCity(uint32_t code) {
  const std::vector<City>& cities = MemberCities();
  auto it = std::lower_bound(cities.begin(), cities.end(), code,
                             [](const City& city, uint32_t c) { return city.code < c; });
  if (it == cities.end() || it->code != code) return nullptr;
  return &*it;
}

double DistanceKm(const City& a, const City& b) {
  // Haversine on a sphere of the Earth's mean radius; good to ~0.5% for city-to-city distances.
  constexpr double kEarthRadiusKm = 6371.0;
  constexpr double kRadiansPerDegree = M_PI / 180.0;
  const double lat_a = a.latitude * kRadiansPerDegree;
  const double lat_b = b.latitude * kRadiansPerDegree;
  const double d_lat = lat_b - lat_a;
  const double d_lon = (b.longitude - a.longitude) * kRadiansPerDegree;
  const double h = std::sin(d_lat / 2) * std::sin(d_lat / 2) +
                   std::cos(lat_a) * std::cos(lat_b) * std::sin(d_lon / 2) * std::sin(d_lon / 2);
  return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(h)));
}

}  // namespace tongka::txn

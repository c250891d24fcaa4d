// Proves the claim table that keeps two calls from producing one transaction id at once: a claim
// is exclusive until released; a batch claims in order, so a repeat of an id within the batch
// is not claimed (it waits, like a second upload); a batch's claims, released together, free
// every id; ids of one batch spread over many shards are claimed and released alike; AwaitFree
// returns once the holder releases. The rest of the IngestApi runs against the real broker in
// ingest_service_test and tests/.
#include "services/ingest/ingest_api.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tongka::ingest {
namespace {

TEST(ClaimTableTest, AClaimIsExclusiveUntilReleased) {
  ClaimTable claims;
  EXPECT_TRUE(claims.TryClaim("txn/a/1"));
  EXPECT_FALSE(claims.TryClaim("txn/a/1"));
  EXPECT_TRUE(claims.TryClaim("txn/a/2"));
  EXPECT_EQ(claims.size(), 2);
  claims.Release("txn/a/1");
  EXPECT_TRUE(claims.TryClaim("txn/a/1"));
}

TEST(ClaimTableTest, ABatchClaimsInOrderAndReleasesTogether) {
  ClaimTable claims;
  ASSERT_TRUE(claims.TryClaim("txn/held/7"));  // another call's
  std::vector<std::string> owned;
  for (int i = 0; i < 500; ++i) owned.push_back(absl::StrCat("txn/310000-BUS-", i % 37, "/", i));
  std::vector<absl::string_view> ids(owned.begin(), owned.end());
  ids.insert(ids.begin() + 100, "txn/held/7");
  ids.push_back(owned[3]);  // a repeat within the batch
  const std::vector<bool> claimed = claims.TryClaimMany(ids);
  ASSERT_EQ(claimed.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool expected = i != 100 && i != ids.size() - 1;
    EXPECT_EQ(claimed[i], expected) << i << " " << ids[i];
  }
  EXPECT_EQ(claims.size(), 501);
  std::vector<absl::string_view> mine(owned.begin(), owned.end());
  claims.ReleaseMany(mine);
  EXPECT_EQ(claims.size(), 1);
  EXPECT_FALSE(claims.TryClaim("txn/held/7"));
  for (absl::string_view id : mine) EXPECT_TRUE(claims.TryClaim(id)) << id;
}

TEST(ClaimTableDeathTest, ReleasingAClaimNobodyHoldsIsABug) {
  ClaimTable claims;
  ASSERT_TRUE(claims.TryClaim("txn/a/1"));
  const std::vector<absl::string_view> ids = {"txn/a/1", "txn/a/2"};
  EXPECT_DEATH(claims.ReleaseMany(ids), "released a claim nobody held: txn/a/2");
}

TEST(ClaimTableTest, AwaitFreeReturnsOnceTheHolderReleases) {
  ClaimTable claims;
  ASSERT_TRUE(claims.TryClaim("txn/a/1"));
  EXPECT_FALSE(claims.AwaitFree("txn/a/1", absl::Now() + absl::Milliseconds(20)));
  std::thread holder([&claims] {
    const std::vector<absl::string_view> ids = {"txn/a/1"};
    claims.ReleaseMany(ids);
  });
  EXPECT_TRUE(claims.AwaitFree("txn/a/1", absl::InfiniteFuture()));
  holder.join();
}

}  // namespace
}  // namespace tongka::ingest

// The main() of every Tongka C++ test: glog to stderr (so a failure's log lines land in the test
// log), a stack trace on crashes, death tests that re-execute the binary (Tongka tests run
// threads: a broker client, a server), then gtest.
#include <glog/logging.h>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  google::InstallFailureSignalHandler();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}

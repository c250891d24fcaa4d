// Proves HmacSm3Tokenizer: secrets shorter than 16 bytes are refused; identifiers normalise as the
// header documents (so spelling variants of one identifier give one token); malformed identifiers
// are INVALID_ARGUMENT without echoing the value; and a token is exactly HMAC-SM3 over the
// documented "prefix NUL domain NUL value" message, so other implementations can reproduce it.
#include "libs/crypto/tokenizer.h"

#include <gtest/gtest.h>

#include <string>

#include "libs/crypto/sm3.h"

namespace tongka::crypto {
namespace {

constexpr absl::string_view kSecret = "0123456789abcdef-test-secret";
// A well-known specimen ID number (check character X).
constexpr absl::string_view kSpecimenId = "11010519491231002X";

HmacSm3Tokenizer MakeTokenizer(absl::string_view secret = kSecret) {
  absl::StatusOr<HmacSm3Tokenizer> tokenizer = HmacSm3Tokenizer::Create(secret);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

TEST(HmacSm3TokenizerTest, RejectsShortSecret) {
  absl::StatusOr<HmacSm3Tokenizer> tokenizer = HmacSm3Tokenizer::Create("fifteen-bytes!!");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HmacSm3Tokenizer::Create("sixteen-bytes!!!").ok());
}

TEST(HmacSm3TokenizerTest, TokenIsHmacSm3OverDocumentedMessage) {
  const HmacSm3Tokenizer tokenizer = MakeTokenizer();
  absl::StatusOr<Sm3Digest> token =
      tokenizer.Tokenize(IdentifierDomain::kResidentIdNumber, kSpecimenId);
  ASSERT_TRUE(token.ok()) << token.status();
  const std::string message =
      std::string("tongka-pii-token-v1\0cn-resident-id\0", 35) + std::string(kSpecimenId);
  EXPECT_EQ(*token, HmacSm3(kSecret, message));

  absl::StatusOr<Sm3Digest> phone =
      tokenizer.Tokenize(IdentifierDomain::kMobilePhone, "13800138000");
  ASSERT_TRUE(phone.ok()) << phone.status();
  EXPECT_EQ(*phone,
            HmacSm3(kSecret, std::string("tongka-pii-token-v1\0cn-mobile\0", 30) + "13800138000"));
}

TEST(HmacSm3TokenizerTest, ResidentIdSpellingVariantsShareOneToken) {
  const HmacSm3Tokenizer tokenizer = MakeTokenizer();
  const Sm3Digest canonical = *tokenizer.Tokenize(IdentifierDomain::kResidentIdNumber, kSpecimenId);
  for (absl::string_view variant :
       {"11010519491231002x", " 11010519491231002X", "11010519491231002x\t\n"}) {
    absl::StatusOr<Sm3Digest> token =
        tokenizer.Tokenize(IdentifierDomain::kResidentIdNumber, variant);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(*token, canonical) << "variant '" << variant << "'";
  }
  EXPECT_EQ(*NormalizeIdentifier(IdentifierDomain::kResidentIdNumber, " 11010519491231002x "),
            kSpecimenId);
}

TEST(HmacSm3TokenizerTest, MobileSpellingVariantsShareOneToken) {
  const HmacSm3Tokenizer tokenizer = MakeTokenizer();
  const Sm3Digest canonical = *tokenizer.Tokenize(IdentifierDomain::kMobilePhone, "13800138000");
  for (absl::string_view variant :
       {"+8613800138000", "008613800138000", " 138 0013 8000 ", "+86 138-0013-8000"}) {
    absl::StatusOr<Sm3Digest> token = tokenizer.Tokenize(IdentifierDomain::kMobilePhone, variant);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(*token, canonical) << "variant '" << variant << "'";
  }
}

TEST(HmacSm3TokenizerTest, RejectsMalformedIdentifiersWithoutEchoingThem) {
  const HmacSm3Tokenizer tokenizer = MakeTokenizer();
  struct Case {
    IdentifierDomain domain;
    const char* value;
  };
  const Case cases[] = {
      {IdentifierDomain::kResidentIdNumber, "110105194912310021"},  // wrong check character
      {IdentifierDomain::kResidentIdNumber, "1101051949123100"},    // too short
      {IdentifierDomain::kResidentIdNumber, "11010519491231002Y"},  // bad check character
      {IdentifierDomain::kResidentIdNumber, "1101051949A231002X"},  // letter in the body
      {IdentifierDomain::kResidentIdNumber, ""},
      {IdentifierDomain::kMobilePhone, "1380013800"},   // 10 digits
      {IdentifierDomain::kMobilePhone, "23800138000"},  // does not start with 1
      {IdentifierDomain::kMobilePhone, "1380013800a"},  // not a digit
      {IdentifierDomain::kMobilePhone, "+1 13800138000"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Sm3Digest> token = tokenizer.Tokenize(c.domain, c.value);
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument) << c.value;
    if (*c.value != '\0') {
      EXPECT_EQ(token.status().message().find(c.value), absl::string_view::npos)
          << "error message leaks the identifier: " << token.status();
    }
  }
}

TEST(HmacSm3TokenizerTest, TokensDependOnSecret) {
  const Sm3Digest a = *MakeTokenizer().Tokenize(IdentifierDomain::kMobilePhone, "13800138000");
  const Sm3Digest b = *MakeTokenizer("another-secret-0123456789")
                           .Tokenize(IdentifierDomain::kMobilePhone, "13800138000");
  EXPECT_NE(a, b);
}

TEST(HmacSm3TokenizerTest, CopiesAndMovesKeepWorking) {
  HmacSm3Tokenizer original = MakeTokenizer();
  const Sm3Digest expected = *original.Tokenize(IdentifierDomain::kMobilePhone, "13800138000");
  HmacSm3Tokenizer copy = original;
  HmacSm3Tokenizer moved = std::move(original);
  EXPECT_EQ(*copy.Tokenize(IdentifierDomain::kMobilePhone, "13800138000"), expected);
  EXPECT_EQ(*moved.Tokenize(IdentifierDomain::kMobilePhone, "13800138000"), expected);
}

}  // namespace
}  // namespace tongka::crypto

// Crypto wrappers (argon2id, tokens, SHA-256), JWT access tokens and the rate limiter.
#include <gtest/gtest.h>
#include <jwt.h>
#include <sodium.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "security/crypto.h"
#include "security/jwt_issuer.h"
#include "security/rate_limiter.h"
#include "security/roles.h"

namespace sw::security {
namespace {

class CryptoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(initCrypto()); }
};

// ---- passwords ----

TEST_F(CryptoTest, HashPasswordIsArgon2idAndVerifies) {
  auto h = hashPassword("correct horse battery staple");
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_TRUE(h->starts_with("$argon2id$")) << *h;
  EXPECT_TRUE(verifyPassword("correct horse battery staple", *h));
  EXPECT_FALSE(verifyPassword("correct horse battery stapl", *h));

  // Salted: the same password hashes differently.
  auto h2 = hashPassword("correct horse battery staple");
  ASSERT_TRUE(h2);
  EXPECT_NE(*h, *h2);
}

TEST_F(CryptoTest, PasswordWithNulIsNotTruncated) {
  const std::string with_nul("pa\0ss", 5);
  auto h = hashPassword(with_nul);
  ASSERT_TRUE(h);
  EXPECT_TRUE(verifyPassword(with_nul, *h));
  EXPECT_FALSE(verifyPassword("pa", *h));  // not truncated at the NUL
}

TEST_F(CryptoTest, VerifyAgainstGarbageHashIsFalse) {
  EXPECT_FALSE(verifyPassword("x", ""));
  EXPECT_FALSE(verifyPassword("x", "not a hash"));
  EXPECT_FALSE(verifyPassword("x", "$argon2id$v=19$m=65536,t=2,p=1$"));
  EXPECT_FALSE(verifyPassword("x", "$2b$12$abcdefghijklmnopqrstuu"));  // bcrypt-looking
}

// ---- random tokens ----

bool urlSafe(const std::string& s) {
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

TEST_F(CryptoTest, RandomTokenLengthCharsetAndEntropy) {
  const std::string t = randomToken();
  EXPECT_EQ(t.size(), 32u);       // 24 bytes, base64url without padding
  EXPECT_GE(t.size() * 6, 128u);  // at least 128 bits of randomness
  EXPECT_TRUE(urlSafe(t)) << t;
  EXPECT_EQ(randomToken(16).size(), 22u);
  EXPECT_EQ(randomToken(32).size(), 43u);
  EXPECT_EQ(randomToken(48).size(), 64u);
  EXPECT_EQ(randomToken(1).size(), 2u);
  EXPECT_EQ(randomToken(15).find('='), std::string::npos);
}

TEST_F(CryptoTest, RandomTokenOfZeroBytesIsEmpty) {
  EXPECT_TRUE(randomToken(0).empty());
}

TEST_F(CryptoTest, RandomTokensAreUnique) {
  std::set<std::string> seen;
  std::set<char> chars;
  for (int i = 0; i < 2000; ++i) {
    std::string t = randomToken(16);
    ASSERT_TRUE(urlSafe(t)) << t;
    EXPECT_TRUE(seen.insert(t).second) << "duplicate token " << t;
    chars.insert(t.begin(), t.end());
  }
  // All 64 symbols show up over 44000 characters; a broken generator would not cover them.
  EXPECT_EQ(chars.size(), 64u);
}

// ---- hashing ----

TEST_F(CryptoTest, Sha256KnownVectors) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("The quick brown fox jumps over the lazy dog"),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
  EXPECT_EQ(sha256Hex(std::string_view("a\0b", 3)).size(), 64u);
  EXPECT_NE(sha256Hex(std::string_view("a\0b", 3)), sha256Hex("a"));
}

TEST_F(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("secret", "secret"));
  EXPECT_FALSE(constantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(constantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(constantTimeEquals("", "x"));
}

// ---- JWT ----

std::string b64url(std::string_view in) {
  std::string out(sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::string unb64url(std::string_view in) {
  std::string out(in.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr, &len,
                        nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return {};
  }
  out.resize(len);
  return out;
}

std::vector<std::string> splitToken(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

// A token built with libjwt directly, to forge what JwtIssuer would never issue.
std::string craft(jwt_alg_t alg, const std::string& key, const std::map<std::string, std::string>& grants,
                  const std::map<std::string, long>& int_grants) {
  jwt_t* j = nullptr;
  EXPECT_EQ(jwt_new(&j), 0);
  for (const auto& [k, v] : grants) EXPECT_EQ(jwt_add_grant(j, k.c_str(), v.c_str()), 0);
  for (const auto& [k, v] : int_grants) EXPECT_EQ(jwt_add_grant_int(j, k.c_str(), v), 0);
  // libjwt wants no key at all for "none".
  const auto* key_bytes = key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data());
  EXPECT_EQ(jwt_set_alg(j, alg, key_bytes, static_cast<int>(key.size())), 0);
  char* enc = jwt_encode_str(j);
  std::string out = enc ? enc : "";
  free(enc);
  jwt_free(j);
  return out;
}

const std::string kKey = "0123456789abcdef0123456789abcdef0123456789abcdef";

void expectUnauthenticated(const Result<Claims>& r, const std::string& what) {
  ASSERT_FALSE(r) << what << " was accepted";
  EXPECT_EQ(r.error().code, Code::kUnauthenticated) << what;
}

TEST(JwtIssuer, IssueVerifyRoundTrip) {
  JwtIssuer jwt(kKey, 900);
  UserId user(newUuid());
  TenantId tenant(newUuid());
  const std::int64_t before = std::time(nullptr);
  auto token = jwt.issue(user, tenant, Role::kTenantAdmin);
  const std::int64_t after = std::time(nullptr);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(splitToken(*token).size(), 3u);
  auto claims = jwt.verify(*token);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->user_id, user);
  EXPECT_EQ(claims->tenant_id, tenant);
  EXPECT_EQ(claims->role, Role::kTenantAdmin);
  EXPECT_GE(claims->expires_at, before + 900);
  EXPECT_LE(claims->expires_at, after + 900);
  EXPECT_EQ(jwt.ttlSeconds(), 900);

  // The header says HS256.
  std::string header = unb64url(splitToken(*token)[0]);
  EXPECT_NE(header.find("HS256"), std::string::npos) << header;
}

TEST(JwtIssuer, EveryRoleAndAnEmptyTenantRoundTrip) {
  JwtIssuer jwt(kKey, 60);
  for (Role role : {Role::kSysadmin, Role::kTenantAdmin, Role::kViewer}) {
    auto token = jwt.issue(UserId("u"), TenantId(), role);
    ASSERT_TRUE(token);
    auto claims = jwt.verify(*token);
    ASSERT_TRUE(claims) << roleName(role) << ": " << claims.error().message;
    EXPECT_EQ(claims->role, role);
    EXPECT_TRUE(claims->tenant_id.empty());
  }
}

TEST(JwtIssuer, TamperedTokensAreRejected) {
  JwtIssuer jwt(kKey, 900);
  auto token = jwt.issue(UserId("user-1"), TenantId("tenant-1"), Role::kViewer);
  ASSERT_TRUE(token);
  auto parts = splitToken(*token);
  ASSERT_EQ(parts.size(), 3u);

  // Privilege escalation in the payload, original signature kept.
  std::string payload = unb64url(parts[1]);
  ASSERT_NE(payload.find("\"viewer\""), std::string::npos) << payload;
  std::string forged = payload;
  forged.replace(forged.find("\"viewer\""), 8, "\"sysadmin\"");
  expectUnauthenticated(jwt.verify(parts[0] + "." + b64url(forged) + "." + parts[2]), "role-escalated payload");

  // Another tenant in the payload.
  forged = payload;
  forged.replace(forged.find("tenant-1"), 8, "tenant-2");
  expectUnauthenticated(jwt.verify(parts[0] + "." + b64url(forged) + "." + parts[2]), "tenant-swapped payload");

  // One character of the signature changed.
  std::string sig = parts[2];
  sig[sig.size() / 2] = sig[sig.size() / 2] == 'A' ? 'B' : 'A';
  expectUnauthenticated(jwt.verify(parts[0] + "." + parts[1] + "." + sig), "changed signature");

  // Signature stripped, truncated, or parts missing.
  expectUnauthenticated(jwt.verify(parts[0] + "." + parts[1] + "."), "no signature");
  expectUnauthenticated(jwt.verify(parts[0] + "." + parts[1]), "two parts");
  expectUnauthenticated(jwt.verify(token->substr(0, token->size() - 3)), "truncated");
  expectUnauthenticated(jwt.verify(*token + "x"), "appended");
  expectUnauthenticated(jwt.verify(""), "empty");
  expectUnauthenticated(jwt.verify("a.b.c"), "garbage");
  expectUnauthenticated(jwt.verify("..."), "dots");
  expectUnauthenticated(jwt.verify(std::string(5000, 'a')), "oversized");
  // The original still verifies.
  EXPECT_TRUE(jwt.verify(*token));
}

TEST(JwtIssuer, WrongKeyIsRejected) {
  JwtIssuer a(kKey, 900);
  JwtIssuer b("another key entirely, just as long as the first one!", 900);
  auto token = a.issue(UserId("u"), TenantId("t"), Role::kViewer);
  ASSERT_TRUE(token);
  expectUnauthenticated(b.verify(*token), "token signed with another key");
  EXPECT_TRUE(a.verify(*token));
}

TEST(JwtIssuer, ExpiredTokensAreRejected) {
  for (int ttl : {0, -1, -3600}) {
    JwtIssuer jwt(kKey, ttl);
    auto token = jwt.issue(UserId("u"), TenantId("t"), Role::kViewer);
    ASSERT_TRUE(token);
    expectUnauthenticated(jwt.verify(*token), "ttl " + std::to_string(ttl));
  }
}

TEST(JwtIssuer, AlgNoneIsRejected) {
  JwtIssuer jwt(kKey, 900);
  const long now = static_cast<long>(std::time(nullptr));
  const std::string payload = R"({"iss":"sensoworks","sub":"u","tid":"t","role":"sysadmin","iat":)" +
                              std::to_string(now) + R"(,"exp":)" + std::to_string(now + 3600) + "}";
  for (std::string header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"none"})", R"({"alg":"None","typ":"JWT"})", R"({"typ":"JWT"})"}) {
    const std::string unsigned_token = b64url(header) + "." + b64url(payload) + ".";
    expectUnauthenticated(jwt.verify(unsigned_token), header);
    expectUnauthenticated(jwt.verify(unsigned_token + b64url("sig")), header + " with a signature");
  }
  // libjwt itself producing an unsigned token.
  std::string none = craft(JWT_ALG_NONE, "", {{"iss", "sensoworks"}, {"sub", "u"}, {"tid", "t"}, {"role", "sysadmin"}},
                           {{"exp", now + 3600}});
  ASSERT_FALSE(none.empty());
  expectUnauthenticated(jwt.verify(none), "libjwt alg none");
}

TEST(JwtIssuer, OnlyHs256WithAllClaimsIsAccepted) {
  JwtIssuer jwt(kKey, 900);
  const long exp = static_cast<long>(std::time(nullptr)) + 3600;
  const std::map<std::string, std::string> good = {
      {"iss", "sensoworks"}, {"sub", "u"}, {"tid", "t"}, {"role", "viewer"}};
  // Control: a hand-made HS256 token with every claim verifies.
  auto ok = jwt.verify(craft(JWT_ALG_HS256, kKey, good, {{"exp", exp}}));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->user_id, UserId("u"));

  // Same key, another HMAC algorithm.
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS512, kKey, good, {{"exp", exp}})), "HS512");
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS384, kKey, good, {{"exp", exp}})), "HS384");
  // Missing or wrong claims.
  for (const char* missing : {"iss", "sub", "tid", "role"}) {
    auto grants = good;
    grants.erase(missing);
    expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS256, kKey, grants, {{"exp", exp}})),
                          std::string("missing ") + missing);
  }
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS256, kKey, good, {})), "missing exp");
  auto other_iss = good;
  other_iss["iss"] = "someone-else";
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS256, kKey, other_iss, {{"exp", exp}})), "foreign issuer");
  auto bad_role = good;
  bad_role["role"] = "root";
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS256, kKey, bad_role, {{"exp", exp}})), "unknown role");
  expectUnauthenticated(jwt.verify(craft(JWT_ALG_HS256, kKey, good, {{"exp", exp - 7200}})), "expired");
}

// ---- roles ----

TEST(Roles, ParseAndNameRoundTrip) {
  for (Role r : {Role::kSysadmin, Role::kTenantAdmin, Role::kViewer}) {
    auto parsed = parseRole(roleName(r));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(parseRole(""));
  EXPECT_FALSE(parseRole("Sysadmin"));
  EXPECT_FALSE(parseRole("admin"));
}

// ---- rate limiter ----

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kT = 1'000 * kSec;  // an arbitrary monotonic origin

TEST(RateLimiter, BurstThenRefusalThenRefill) {
  RateLimiter rl;
  // 10/s sustained, burst 20.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(rl.allow("dev", 10, 20, 1, kT)) << i;
  EXPECT_FALSE(rl.allow("dev", 10, 20, 1, kT));
  EXPECT_FALSE(rl.allow("dev", 10, 20, 1, kT + kSec / 20));      // half a token refilled
  EXPECT_TRUE(rl.allow("dev", 10, 20, 1, kT + 3 * kSec / 20));   // 1.5 tokens: one request
  EXPECT_FALSE(rl.allow("dev", 10, 20, 1, kT + 3 * kSec / 20));  // 0.5 left
  // One second later: 10.5 tokens, so 10 more.
  int allowed = 0;
  for (int i = 0; i < 30; ++i) allowed += rl.allow("dev", 10, 20, 1, kT + 3 * kSec / 20 + kSec);
  EXPECT_EQ(allowed, 10);
  // A long idle period refills only up to the burst.
  allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rl.allow("dev", 10, 20, 1, kT + 3600 * kSec);
  EXPECT_EQ(allowed, 20);
}

TEST(RateLimiter, SustainedRateIsEnforced) {
  RateLimiter rl;
  // 100 requests per second offered for 10 s against a 5/s limit with burst 5.
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) allowed += rl.allow("dev", 5, 5, 1, kT + i * (kSec / 100));
  EXPECT_GE(allowed, 5 + 49);  // the burst, then 5/s for 9.99 s
  EXPECT_LE(allowed, 5 + 50);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter rl;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.allow("a", 1, 3, 1, kT));
  EXPECT_FALSE(rl.allow("a", 1, 3, 1, kT));
  EXPECT_TRUE(rl.allow("b", 1, 3, 1, kT));
}

TEST(RateLimiter, CostTakesSeveralTokens) {
  RateLimiter rl;
  EXPECT_TRUE(rl.allow("dev", 10, 10, 6, kT));
  EXPECT_FALSE(rl.allow("dev", 10, 10, 6, kT));  // 4 left
  EXPECT_TRUE(rl.allow("dev", 10, 10, 4, kT));
  EXPECT_FALSE(rl.allow("dev", 10, 10, 1, kT));
  // A cost above the burst is still possible once (the burst is raised to the cost).
  EXPECT_TRUE(rl.allow("big", 1, 1, 5, kT));
}

TEST(RateLimiter, NonPositiveRateIsUnlimited) {
  RateLimiter rl;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(rl.allow("dev", 0, 1, 1, kT));
    ASSERT_TRUE(rl.allow("dev2", -5, 0, 100, kT));
  }
}

TEST(RateLimiter, BurstBelowRateIsRaisedToRate) {
  RateLimiter rl;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rl.allow("dev", 10, 0, 1, kT);
  EXPECT_EQ(allowed, 10);
}

TEST(RateLimiter, KeyCountIsBounded) {
  // max_keys = 1 keeps one bucket per shard: an exhausted key is forgotten (so allowed again)
  // once other keys pass through its shard. With room for every key it stays refused.
  RateLimiter tiny(1);
  RateLimiter roomy;
  for (RateLimiter* rl : {&tiny, &roomy}) {
    ASSERT_TRUE(rl->allow("victim", 1, 1, 1, kT));
    ASSERT_FALSE(rl->allow("victim", 1, 1, 1, kT));
    for (int i = 0; i < 2000; ++i) rl->allow("other-" + std::to_string(i), 1, 1, 1, kT);
  }
  EXPECT_TRUE(tiny.allow("victim", 1, 1, 1, kT)) << "bucket was kept beyond max_keys";
  EXPECT_FALSE(roomy.allow("victim", 1, 1, 1, kT)) << "bucket was dropped although there was room";
}

TEST(RateLimiter, IdleBucketsAreDroppedFirstWithoutEffect) {
  // Buckets that have refilled completely are dropped when a shard is full; that must not
  // change any decision.
  RateLimiter rl(64);  // 3 per shard
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(rl.allow("k" + std::to_string(i), 1, 2, 1, kT));
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(rl.allow("k" + std::to_string(i), 1, 2, 1, kT + 10 * kSec));
    ASSERT_TRUE(rl.allow("k" + std::to_string(i), 1, 2, 1, kT + 10 * kSec));
  }
}

TEST(RateLimiter, RealClockWhenNotInjected) {
  RateLimiter rl;
  EXPECT_TRUE(rl.allow("dev", 0.001, 1));
  EXPECT_FALSE(rl.allow("dev", 0.001, 1));  // refilling a whole token takes 1000 s
}

}  // namespace
}  // namespace sw::security

#pragma once
// Thin wrappers over libsodium: password hashing (argon2id), random tokens, SHA-256.
// All functions are thread-safe. Password hashing is deliberately slow (tens of ms, 64 MiB):
// call it from a blocking pool.
#include <string>
#include <string_view>

#include "core/status.h"

namespace sw::security {

// Must be called once before any other function (initialises libsodium).
Status initCrypto();

Result<std::string> hashPassword(std::string_view password);
bool verifyPassword(std::string_view password, const std::string& hash);

// bytes of randomness, URL-safe base64 without padding.
std::string randomToken(std::size_t bytes = 24);
std::string sha256Hex(std::string_view data);
// Constant-time comparison of equal-length strings.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace sw::security

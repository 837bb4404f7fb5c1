#pragma once
// Strongly typed identifiers. Ids are UUIDs in their canonical 36-character text form; the
// type keeps a tenant id from being passed where a device id is expected.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sw {

template <typename Tag>
class Id {
 public:
  Id() = default;
  explicit Id(std::string value) : value_(std::move(value)) {}
  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend bool operator==(const Id&, const Id&) = default;
  friend auto operator<=>(const Id&, const Id&) = default;

 private:
  std::string value_;
};

using TenantId = Id<struct TenantTag>;
using UserId = Id<struct UserTag>;
using DeviceId = Id<struct DeviceTag>;

using Uuid = std::array<std::uint8_t, 16>;

// A random (version 4) UUID in canonical text form.
std::string newUuid();
// Parses the canonical text form; nullopt for anything else (untrusted input is never asserted).
std::optional<Uuid> parseUuid(std::string_view text);
std::string formatUuid(const Uuid& uuid);

}  // namespace sw

template <typename Tag>
struct std::hash<sw::Id<Tag>> {
  size_t operator()(const sw::Id<Tag>& id) const noexcept { return std::hash<std::string>{}(id.str()); }
};

// Telemetry codecs: ThingsBoard-style JSON, SenML (RFC 8428) and the content-type registry.
// Input is untrusted: every failure must be Code::kInvalidArgument naming the offending field.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ingest/codecs/codec_registry.h"
#include "ingest/codecs/codec_util.h"
#include "ingest/codecs/json_telemetry_codec.h"
#include "ingest/codecs/senml_codec.h"

namespace sw::ingest {
namespace {

using storage::JsonText;
using storage::Point;
using storage::Value;

constexpr std::int64_t kNow = 1'700'000'000'000;  // ms

struct Decoded {
  Status status;
  std::vector<Point> points;
};

Decoded decodeWith(const TelemetryCodec& codec, std::string_view payload, const DecodeLimits& limits = {},
                   std::int64_t now = kNow) {
  Decoded d;
  d.status = codec.decode(payload, now, limits, d.points);
  return d;
}

Decoded json(std::string_view payload, const DecodeLimits& limits = {}, std::int64_t now = kNow) {
  static const JsonTelemetryCodec codec;
  return decodeWith(codec, payload, limits, now);
}

Decoded senml(std::string_view payload, const DecodeLimits& limits = {}, std::int64_t now = kNow) {
  static const SenmlCodec codec;
  return decodeWith(codec, payload, limits, now);
}

// Asserts an invalid_argument error naming `field`.
void expectInvalid(const Decoded& d, const std::string& field) {
  ASSERT_FALSE(d.status.has_value()) << "expected an error for field " << field;
  EXPECT_EQ(d.status.error().code, Code::kInvalidArgument);
  EXPECT_EQ(d.status.error().field, field);
  EXPECT_FALSE(d.status.error().message.empty());
}

const Point* find(const std::vector<Point>& points, std::string_view key) {
  for (const auto& p : points) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// JsonTelemetryCodec
// ---------------------------------------------------------------------------------------------

TEST(JsonTelemetryCodec, FlatObjectUsesNowAndKeepsEveryValueKind) {
  auto d = json(R"({"temp":21.5,"count":42,"neg":-7,"on":true,"off":false,"name":"boiler 1",
                    "obj":{"a": 1, "b": [1, 2, {"c": null}]},"arr":[1, "x"]})");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 8u);
  for (const auto& p : d.points) EXPECT_EQ(p.ts, kNow) << p.key;
  // Document order is kept.
  EXPECT_EQ(d.points[0].key, "temp");
  EXPECT_EQ(d.points[7].key, "arr");
  EXPECT_EQ(find(d.points, "temp")->value, Value(21.5));
  EXPECT_EQ(find(d.points, "count")->value, Value(42.0));
  EXPECT_EQ(find(d.points, "neg")->value, Value(-7.0));
  EXPECT_EQ(find(d.points, "on")->value, Value(true));
  EXPECT_EQ(find(d.points, "off")->value, Value(false));
  EXPECT_EQ(find(d.points, "name")->value, Value(std::string("boiler 1")));
  // Objects and arrays are kept as compact JSON text.
  EXPECT_EQ(find(d.points, "obj")->value, Value(JsonText{R"({"a":1,"b":[1,2,{"c":null}]})"}));
  EXPECT_EQ(find(d.points, "arr")->value, Value(JsonText{R"([1,"x"])"}));
}

TEST(JsonTelemetryCodec, LargeAndFractionalNumbersAreDoubles) {
  auto d = json(R"({"big":18446744073709551615,"tiny":1e-300,"exp":2.5E3})");
  ASSERT_TRUE(d.status);
  ASSERT_EQ(d.points.size(), 3u);
  EXPECT_EQ(find(d.points, "big")->value, Value(18446744073709551615.0));
  EXPECT_EQ(find(d.points, "tiny")->value, Value(1e-300));
  EXPECT_EQ(find(d.points, "exp")->value, Value(2500.0));
}

TEST(JsonTelemetryCodec, TsValuesForm) {
  auto d = json(R"({"ts":1451649600512,"values":{"temp":26,"mode":"eco"}})");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 2u);
  for (const auto& p : d.points) EXPECT_EQ(p.ts, 1451649600512);
  EXPECT_EQ(find(d.points, "temp")->value, Value(26.0));
  EXPECT_EQ(find(d.points, "mode")->value, Value(std::string("eco")));
}

TEST(JsonTelemetryCodec, TsAsWholeDoubleAndBoundaries) {
  auto d = json(R"({"ts":1.5e12,"values":{"a":1}})");
  ASSERT_TRUE(d.status);
  ASSERT_EQ(d.points.size(), 1u);
  EXPECT_EQ(d.points[0].ts, 1'500'000'000'000);

  auto zero = json(R"({"ts":0,"values":{"a":1}})");
  ASSERT_TRUE(zero.status);
  EXPECT_EQ(zero.points[0].ts, 0);

  auto max = json(R"({"ts":253402300799999,"values":{"a":1}})");
  ASSERT_TRUE(max.status);
  EXPECT_EQ(max.points[0].ts, kMaxTimestampMs);
}

TEST(JsonTelemetryCodec, ArrayOfEntriesMixesForms) {
  auto d = json(R"([{"ts":1000,"values":{"a":1}},{"ts":2000,"values":{"a":2,"b":true}},{"c":"now"}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 4u);
  EXPECT_EQ(d.points[0].ts, 1000);
  EXPECT_EQ(d.points[0].key, "a");
  EXPECT_EQ(d.points[1].ts, 2000);
  EXPECT_EQ(d.points[2].ts, 2000);
  EXPECT_EQ(d.points[2].value, Value(true));
  EXPECT_EQ(d.points[3].key, "c");
  EXPECT_EQ(d.points[3].ts, kNow);
}

TEST(JsonTelemetryCodec, EmptyObjectAndEmptyArrayGiveNoPoints) {
  auto a = json("{}");
  ASSERT_TRUE(a.status);
  EXPECT_TRUE(a.points.empty());
  auto b = json("[]");
  ASSERT_TRUE(b.status);
  EXPECT_TRUE(b.points.empty());
}

TEST(JsonTelemetryCodec, DecodeAppendsToOutput) {
  static const JsonTelemetryCodec codec;
  std::vector<Point> out;
  ASSERT_TRUE(codec.decode(R"({"a":1})", kNow, {}, out));
  ASSERT_TRUE(codec.decode(R"({"b":2})", kNow, {}, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key, "a");
  EXPECT_EQ(out[1].key, "b");
}

TEST(JsonTelemetryCodec, MalformedBodyIsBodyError) {
  expectInvalid(json(""), "body");
  expectInvalid(json("{"), "body");
  expectInvalid(json(R"({"a":1,})"), "body");
  expectInvalid(json("not json"), "body");
  expectInvalid(json(std::string("{\"a\":1}\0", 8)), "body");  // trailing NUL byte
}

TEST(JsonTelemetryCodec, NonObjectRootOrEntryIsRejected) {
  expectInvalid(json("null"), "body");
  expectInvalid(json("42"), "body");
  expectInvalid(json(R"("text")"), "body");
  expectInvalid(json("true"), "body");
  expectInvalid(json(R"([{"a":1}, 5])"), "[1]");
  expectInvalid(json(R"([[{"a":1}]])"), "[0]");
  expectInvalid(json("[null]"), "[0]");
}

TEST(JsonTelemetryCodec, NullValuesAreRejectedWithTheirField) {
  expectInvalid(json(R"({"x":null})"), "x");
  expectInvalid(json(R"({"ts":1000,"values":{"ok":1,"x":null}})"), "values.x");
  expectInvalid(json(R"([{"a":1},{"b":null}])"), "[1].b");
  expectInvalid(json(R"([{"a":1},{"ts":5,"values":{"x":null}}])"), "[1].values.x");
}

TEST(JsonTelemetryCodec, BadTimestampsAreRejected) {
  expectInvalid(json(R"({"ts":1.5,"values":{"a":1}})"), "ts");
  expectInvalid(json(R"({"ts":-1,"values":{"a":1}})"), "ts");
  expectInvalid(json(R"({"ts":"1000","values":{"a":1}})"), "ts");
  expectInvalid(json(R"({"ts":253402300800000,"values":{"a":1}})"), "ts");  // after year 9999
  expectInvalid(json(R"({"ts":18446744073709551615,"values":{"a":1}})"), "ts");
  expectInvalid(json(R"({"ts":1e300,"values":{"a":1}})"), "ts");
  expectInvalid(json(R"([{"ts":1,"values":{"a":1}},{"ts":true,"values":{"a":1}}])"), "[1].ts");
}

TEST(JsonTelemetryCodec, ValuesMustBeAnObject) {
  expectInvalid(json(R"({"ts":1000,"values":5})"), "values");
  expectInvalid(json(R"({"ts":1000,"values":[1,2]})"), "values");
  expectInvalid(json(R"([{"ts":1000,"values":{"a":1}},{"ts":1000,"values":"x"}])"), "[1].values");
}

TEST(JsonTelemetryCodec, MaxPointsLimit) {
  DecodeLimits limits;
  limits.max_points = 3;
  auto ok3 = json(R"({"a":1,"b":2,"c":3})", limits);
  ASSERT_TRUE(ok3.status);
  EXPECT_EQ(ok3.points.size(), 3u);

  auto too_many = json(R"({"a":1,"b":2,"c":3,"d":4})", limits);
  ASSERT_FALSE(too_many.status);
  EXPECT_EQ(too_many.status.error().code, Code::kInvalidArgument);

  // The limit is per message, across the entries of an array.
  auto arr = json(R"([{"a":1,"b":2},{"c":3,"d":4}])", limits);
  ASSERT_FALSE(arr.status);
  EXPECT_EQ(arr.status.error().code, Code::kInvalidArgument);
}

TEST(JsonTelemetryCodec, KeyLengthLimit) {
  DecodeLimits limits;
  limits.max_key_bytes = 255;
  const std::string k255(255, 'k'), k256(256, 'k');
  auto ok = json("{\"" + k255 + "\":1}", limits);
  ASSERT_TRUE(ok.status);
  EXPECT_EQ(ok.points[0].key, k255);
  expectInvalid(json("{\"" + k256 + "\":1}", limits), k256);
  expectInvalid(json(R"({"":1})"), "");  // empty key
  expectInvalid(json(R"({"ts":5,"values":{"":1}})"), "values.");
}

TEST(JsonTelemetryCodec, ControlCharactersInKeysAreRejected) {
  expectInvalid(json(R"({"a\u0001b":1})"), std::string("a\x01"
                                                       "b"));
  expectInvalid(json(R"({"line\nbreak":1})"), "line\nbreak");
  expectInvalid(json(R"({"tab\t":1})"), "tab\t");
  expectInvalid(json(R"({"del\u007f":1})"), "del\x7f");
  expectInvalid(json(R"({"nul\u0000":1})"), std::string("nul\0", 4));
  // Non-ASCII UTF-8 keys are fine.
  auto d = json(R"({"température":1,"温度":2,"😀":3})");
  ASSERT_TRUE(d.status);
  EXPECT_EQ(d.points.size(), 3u);
}

TEST(JsonTelemetryCodec, InvalidUtf8KeyIsRejected) {
  // simdjson validates UTF-8 of the whole document; either way it must be invalid_argument.
  for (std::string payload : {std::string("{\"\xC3\x28\":1}"), std::string("{\"a\xFF\":1}"),
                              std::string("{\"\xED\xA0\x80\":1}"), std::string(R"({"\ud800":1})")}) {
    auto d = json(payload);
    ASSERT_FALSE(d.status) << payload;
    EXPECT_EQ(d.status.error().code, Code::kInvalidArgument);
  }
}

TEST(JsonTelemetryCodec, StringAndJsonValueLengthLimits) {
  DecodeLimits limits;
  limits.max_string_bytes = 10;
  auto ok = json(R"({"s":"0123456789","o":{"a":12345}})", limits);  // {"a":12345} is 11 bytes
  ASSERT_FALSE(ok.status);
  EXPECT_EQ(ok.status.error().field, "o");
  auto fits = json(R"({"s":"0123456789","o":{"a":1234}})", limits);
  ASSERT_TRUE(fits.status);
  expectInvalid(json(R"({"s":"01234567890"})", limits), "s");
}

// ---------------------------------------------------------------------------------------------
// SenmlCodec
// ---------------------------------------------------------------------------------------------

TEST(SenmlCodec, BaseNameAndBaseTimeApplyToFollowingRecords) {
  auto d = senml(R"([{"bn":"urn:dev:ow:10e2073a01080063:","bt":1.32e+09,"n":"voltage","u":"V","v":120.1},
                     {"n":"current","t":-5,"v":1.2},
                     {"n":"current","t":-4,"v":1.3}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 3u);
  EXPECT_EQ(d.points[0].key, "urn:dev:ow:10e2073a01080063:voltage");
  EXPECT_EQ(d.points[0].ts, 1'320'000'000'000);
  EXPECT_EQ(d.points[0].value, Value(120.1));
  EXPECT_EQ(d.points[1].key, "urn:dev:ow:10e2073a01080063:current");
  EXPECT_EQ(d.points[1].ts, 1'319'999'995'000);
  EXPECT_EQ(d.points[2].ts, 1'319'999'996'000);
  EXPECT_EQ(d.points[2].value, Value(1.3));
}

TEST(SenmlCodec, BaseNameCanChangeMidPack) {
  auto d = senml(R"([{"bn":"a/","n":"x","v":1},{"bn":"b/","n":"x","v":2},{"n":"y","v":3}])");
  ASSERT_TRUE(d.status);
  ASSERT_EQ(d.points.size(), 3u);
  EXPECT_EQ(d.points[0].key, "a/x");
  EXPECT_EQ(d.points[1].key, "b/x");
  EXPECT_EQ(d.points[2].key, "b/y");
}

TEST(SenmlCodec, BaseValueAddsToNumericValuesOnly) {
  auto d = senml(R"([{"bn":"d:","bv":100,"n":"a","v":1},{"n":"b","v":-2.5},{"n":"c","vb":true},{"n":"s","vs":"x"}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 4u);
  EXPECT_EQ(find(d.points, "d:a")->value, Value(101.0));
  EXPECT_EQ(find(d.points, "d:b")->value, Value(97.5));
  EXPECT_EQ(find(d.points, "d:c")->value, Value(true));
  EXPECT_EQ(find(d.points, "d:s")->value, Value(std::string("x")));
}

TEST(SenmlCodec, BaseSumAddsToSum) {
  auto d = senml(R"([{"bn":"m:","bs":1000,"n":"energy","s":5},{"n":"water","s":0.5}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 2u);
  EXPECT_EQ(find(d.points, "m:energy")->value, Value(1005.0));
  EXPECT_EQ(find(d.points, "m:water")->value, Value(1000.5));
}

TEST(SenmlCodec, RelativeTimesAreAddedToNow) {
  auto d = senml(R"([{"n":"a","v":1},{"n":"b","v":2,"t":-5},{"n":"c","v":3,"t":10.5},{"n":"d","v":4,"t":268435455}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 4u);
  EXPECT_EQ(find(d.points, "a")->ts, kNow);  // no time: now
  EXPECT_EQ(find(d.points, "b")->ts, kNow - 5000);
  EXPECT_EQ(find(d.points, "c")->ts, kNow + 10500);
  EXPECT_EQ(find(d.points, "d")->ts, kNow + 268'435'455'000);  // just below 2^28: still relative
}

// RFC 8428 section 4.5.3: "Values greater than or equal to 2**28 represent an absolute time
// relative to the Unix epoch. Values less than 2**28 represent time relative to the current
// time." Every negative time is therefore relative, however large.
TEST(SenmlCodec, LargeNegativeTimesAreRelative) {
  auto d = senml(
      R"([{"n":"a","v":1,"t":-300000000},{"bt":-268435456,"n":"b","v":2},{"bt":0,"n":"c","v":3,"t":-268435455}])");
  ASSERT_TRUE(d.status) << d.status.error().field << ": " << d.status.error().message;
  ASSERT_EQ(d.points.size(), 3u);
  EXPECT_EQ(find(d.points, "a")->ts, kNow - 300'000'000'000);
  EXPECT_EQ(find(d.points, "b")->ts, kNow - 268'435'456'000);
  EXPECT_EQ(find(d.points, "c")->ts, kNow - 268'435'455'000);
}

TEST(SenmlCodec, AbsoluteSecondsBecomeMilliseconds) {
  auto d = senml(
      R"([{"n":"a","v":1,"t":268435456},{"n":"b","v":2,"t":1700000000.123},{"bt":1700000000,"n":"c","v":3,"t":0.5}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 3u);
  EXPECT_EQ(find(d.points, "a")->ts, 268'435'456'000);  // 2^28 s: absolute
  EXPECT_EQ(find(d.points, "b")->ts, 1'700'000'000'123);
  EXPECT_EQ(find(d.points, "c")->ts, 1'700'000'000'500);
}

TEST(SenmlCodec, ValueKinds) {
  auto d = senml(
      R"([{"n":"v","v":-1.25},{"n":"vb","vb":false},{"n":"vs","vs":"on"},{"n":"vd","vd":"aGk"},{"n":"i","v":7}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 5u);
  EXPECT_EQ(find(d.points, "v")->value, Value(-1.25));
  EXPECT_EQ(find(d.points, "vb")->value, Value(false));
  EXPECT_EQ(find(d.points, "vs")->value, Value(std::string("on")));
  EXPECT_EQ(find(d.points, "vd")->value, Value(std::string("aGk")));
  EXPECT_EQ(find(d.points, "i")->value, Value(7.0));
}

TEST(SenmlCodec, UnitsVersionAndUpdateTimeAreAccepted) {
  auto d = senml(R"([{"bver":10,"bu":"Cel","bn":"x:","n":"t","u":"Cel","ut":60,"v":20}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 1u);
  EXPECT_EQ(d.points[0].key, "x:t");
}

TEST(SenmlCodec, BaseOnlyRecordsAreSkipped) {
  auto d = senml(R"([{"bn":"dev:"},{"bt":1700000000},{"n":"a","v":1}])");
  ASSERT_TRUE(d.status) << d.status.error().message;
  ASSERT_EQ(d.points.size(), 1u);
  EXPECT_EQ(d.points[0].key, "dev:a");
  EXPECT_EQ(d.points[0].ts, 1'700'000'000'000);
  auto empty = senml("[]");
  ASSERT_TRUE(empty.status);
  EXPECT_TRUE(empty.points.empty());
}

TEST(SenmlCodec, TwoValueFieldsAreRejected) {
  expectInvalid(senml(R"([{"n":"a","v":1,"vs":"x"}])"), "[0]");
  expectInvalid(senml(R"([{"n":"ok","v":1},{"n":"a","vb":true,"vd":"aGk"}])"), "[1]");
  expectInvalid(senml(R"([{"n":"a","v":1,"v":2}])"), "[0]");
}

TEST(SenmlCodec, MustUnderstandFieldsAreRejected) {
  expectInvalid(senml(R"([{"n":"a","v":1,"foo_":1}])"), "[0].foo_");
  expectInvalid(senml(R"([{"n":"ok","v":1},{"bn_":"x","n":"a","v":1}])"), "[1].bn_");
  // Unknown fields without the suffix are ignored (RFC 8428 section 4.4).
  auto d = senml(R"([{"n":"a","v":1,"foo":"bar"}])");
  ASSERT_TRUE(d.status);
  EXPECT_EQ(d.points.size(), 1u);
}

TEST(SenmlCodec, StructuralErrors) {
  expectInvalid(senml("not json"), "body");
  expectInvalid(senml(R"({"n":"a","v":1})"), "body");  // not an array
  expectInvalid(senml("null"), "body");
  expectInvalid(senml(R"([{"n":"a","v":1}, 5])"), "[1]");
  expectInvalid(senml(R"([null])"), "[0]");
  expectInvalid(senml(R"([{"n":"a"}])"), "[0]");  // a name but no value
}

TEST(SenmlCodec, FieldTypeErrorsNameTheField) {
  expectInvalid(senml(R"([{"n":5,"v":1}])"), "[0].n");
  expectInvalid(senml(R"([{"n":"a","v":"1"}])"), "[0].v");
  expectInvalid(senml(R"([{"n":"a","v":null}])"), "[0].v");
  expectInvalid(senml(R"([{"n":"a","vb":1}])"), "[0].vb");
  expectInvalid(senml(R"([{"n":"a","vs":1}])"), "[0].vs");
  expectInvalid(senml(R"([{"n":"a","v":1,"t":"now"}])"), "[0].t");
  expectInvalid(senml(R"([{"bn":1,"n":"a","v":1}])"), "[0].bn");
  expectInvalid(senml(R"([{"bt":null,"n":"a","v":1}])"), "[0].bt");
  expectInvalid(senml(R"([{"n":"ok","v":1},{"bv":"x","n":"a","v":1}])"), "[1].bv");
  expectInvalid(senml(R"([{"n":"a","s":true}])"), "[0].s");
}

TEST(SenmlCodec, EmptyOrInvalidResolvedNameIsRejected) {
  expectInvalid(senml(R"([{"v":1}])"), "[0].n");
  expectInvalid(senml(R"([{"n":"ok","v":1},{"bn":"","n":"","v":1}])"), "[1].n");
  expectInvalid(senml(R"([{"n":"a\u0001","v":1}])"), "[0].n");
  DecodeLimits limits;
  limits.max_key_bytes = 8;
  auto ok = senml(R"([{"bn":"abcd","n":"efgh","v":1}])", limits);
  ASSERT_TRUE(ok.status);
  expectInvalid(senml(R"([{"bn":"abcd","n":"efghi","v":1}])", limits), "[0].n");
}

TEST(SenmlCodec, TimeOutOfRangeIsRejected) {
  expectInvalid(senml(R"([{"n":"a","v":1,"t":1e12}])"), "[0].t");         // year ~33658
  expectInvalid(senml(R"([{"n":"a","v":1,"t":-2000000000}])"), "[0].t");  // relative, but before 1970
  expectInvalid(senml(R"([{"n":"a","v":1,"t":-1e300}])"), "[0].t");
  expectInvalid(senml(R"([{"n":"a","v":1,"t":1e300}])"), "[0].t");
}

TEST(SenmlCodec, MaxPointsAndStringLimits) {
  DecodeLimits limits;
  limits.max_points = 2;
  auto ok = senml(R"([{"n":"a","v":1},{"n":"b","v":2}])", limits);
  ASSERT_TRUE(ok.status);
  auto bad = senml(R"([{"n":"a","v":1},{"n":"b","v":2},{"n":"c","v":3}])", limits);
  ASSERT_FALSE(bad.status);
  EXPECT_EQ(bad.status.error().code, Code::kInvalidArgument);

  DecodeLimits strings;
  strings.max_string_bytes = 4;
  ASSERT_TRUE(senml(R"([{"n":"a","vs":"abcd"}])", strings).status);
  expectInvalid(senml(R"([{"n":"a","vs":"abcde"}])", strings), "[0].vs");
}

// ---------------------------------------------------------------------------------------------
// Key validation helpers
// ---------------------------------------------------------------------------------------------

TEST(CodecUtil, ValidUtf8) {
  EXPECT_TRUE(validUtf8(""));
  EXPECT_TRUE(validUtf8("plain ascii"));
  EXPECT_TRUE(validUtf8("\xC3\xA9"));            // é
  EXPECT_TRUE(validUtf8("\xE2\x82\xAC"));        // €
  EXPECT_TRUE(validUtf8("\xF0\x9F\x98\x80"));    // 😀
  EXPECT_TRUE(validUtf8("a\xF4\x8F\xBF\xBFz"));  // U+10FFFF
  EXPECT_FALSE(validUtf8("\xC3\x28"));           // bad continuation
  EXPECT_FALSE(validUtf8("\xC3"));               // truncated
  EXPECT_FALSE(validUtf8("ab\xE2\x82"));         // truncated 3-byte
  EXPECT_FALSE(validUtf8("\xC0\xAF"));           // overlong
  EXPECT_FALSE(validUtf8("\xE0\x80\xAF"));       // overlong
  EXPECT_FALSE(validUtf8("\xED\xA0\x80"));       // surrogate
  EXPECT_FALSE(validUtf8("\xF4\x90\x80\x80"));   // above U+10FFFF
  EXPECT_FALSE(validUtf8("\xFF"));
  EXPECT_FALSE(validUtf8("\x80"));  // lone continuation
}

TEST(CodecUtil, ValidateKey) {
  DecodeLimits limits;
  limits.max_key_bytes = 4;
  EXPECT_TRUE(validateKey("abcd", limits, "f"));
  EXPECT_TRUE(validateKey("\xC3\xA9", limits, "f"));
  for (std::string bad :
       {std::string(), std::string("abcde"), std::string("a\x1f"), std::string("\x7f"), std::string("\xC3\x28")}) {
    auto st = validateKey(bad, limits, "the.field");
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, Code::kInvalidArgument);
    EXPECT_EQ(st.error().field, "the.field");
  }
}

TEST(CodecUtil, ValidTimestamp) {
  EXPECT_TRUE(validTimestamp(0));
  EXPECT_TRUE(validTimestamp(kMaxTimestampMs));
  EXPECT_FALSE(validTimestamp(-1));
  EXPECT_FALSE(validTimestamp(kMaxTimestampMs + 1));
}

// ---------------------------------------------------------------------------------------------
// CodecRegistry
// ---------------------------------------------------------------------------------------------

TEST(CodecRegistry, SelectsByContentType) {
  CodecRegistry registry;
  EXPECT_EQ(registry.forContentType("application/senml+json").name(), "senml");
  EXPECT_EQ(registry.forContentType("application/senml+json; charset=utf-8").name(), "senml");
  EXPECT_EQ(registry.forContentType("application/senml+json;charset=UTF-8").name(), "senml");
  EXPECT_EQ(registry.forContentType("APPLICATION/SENML+JSON").name(), "senml");
  EXPECT_EQ(registry.forContentType("Application/SenML+JSON ; charset=utf-8").name(), "senml");
  EXPECT_EQ(registry.forContentType("application/json").name(), "json");
  EXPECT_EQ(registry.forContentType("application/json; charset=utf-8").name(), "json");
  EXPECT_EQ(registry.forContentType("").name(), "json");
  EXPECT_EQ(registry.forContentType("text/plain").name(), "json");
  EXPECT_EQ(registry.forContentType("application/senml+cbor").name(), "json");
}

TEST(CodecRegistry, ByName) {
  CodecRegistry registry;
  ASSERT_NE(registry.byName("json"), nullptr);
  ASSERT_NE(registry.byName("senml"), nullptr);
  EXPECT_EQ(registry.byName("json")->name(), "json");
  EXPECT_EQ(registry.byName("cbor"), nullptr);
  // The selected codec actually decodes its format.
  std::vector<Point> out;
  ASSERT_TRUE(registry.forContentType("application/senml+json").decode(R"([{"n":"a","v":1}])", kNow, {}, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, "a");
}

}  // namespace
}  // namespace sw::ingest

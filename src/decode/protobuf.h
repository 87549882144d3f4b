#pragma once
// A schema-less reader of the protobuf wire format: field numbers, wire types and values, with
// length-delimited fields shown as a nested message when their bytes parse as one, else as a
// string when they are printable UTF-8, else as bytes. What protoc --decode_raw shows, as JSON
// for the viewer. Bounded: nesting depth, field count and output size are capped, and bytes
// that do not parse as a message at the top are an Error naming the offset.

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace mitmd::decode {

struct ProtobufLimits {
  int max_depth = 16;
  size_t max_fields = 10000;  // over the whole message, nested ones included
};

// [{"field":1,"wire":"varint","value":150}, {"field":2,"wire":"len","size":3,"string":"abc"},
//  {"field":3,"wire":"len","size":5,"message":[...]}, {"field":4,"wire":"len","bytes":"<b64>"},
//  {"field":5,"wire":"i32","value":..,"float":..}, {"field":6,"wire":"i64","value":..,"double":..}]
// Varints also give "sint" (zigzag) when it differs; groups (wire types 3/4) are nested too.
Result<nlohmann::json> DecodeProtobuf(std::string_view data, const ProtobufLimits& limits = {});

}  // namespace mitmd::decode

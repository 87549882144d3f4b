// Fuzzes the schema-less protobuf reader and the gRPC message splitter. Besides the sanitizers'
// checks it aborts when the split messages do not add up to the body, or when the decoded JSON
// cannot be serialized (invalid UTF-8 would throw there).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "decode/grpc.h"
#include "decode/protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto j = mitmd::decode::DecodeProtobuf(input)) (void)j->dump();
  size_t total = 0;
  for (const auto& m : mitmd::decode::SplitGrpc(input)) total += 5 + m.data.size();
  if (total < input.size()) {
    std::fprintf(stderr, "protobuf_fuzz: split messages lose bytes\n");
    std::abort();
  }
  (void)mitmd::decode::GrpcMessagesJson(input, false).dump();
  return 0;
}

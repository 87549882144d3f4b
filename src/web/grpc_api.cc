#include "web/grpc_api.h"

#include "decode/grpc.h"

namespace mitmd::web {

nlohmann::json GrpcViewJson(const Flow& flow) {
  const std::string* type =
      flow.request ? FindHeader(flow.request->headers, "content-type") : nullptr;
  if (!type || !decode::IsGrpcContentType(*type)) return {{"grpc", false}};
  const HttpRequest& req = *flow.request;
  // The path is /package.Service/Method.
  std::string_view path = req.path;
  size_t slash = path.find('/', 1);
  nlohmann::json view = {
      {"grpc", true},
      {"service", std::string(path.substr(1, slash == std::string_view::npos ? 0 : slash - 1))},
      {"method", std::string(slash == std::string_view::npos ? "" : path.substr(slash + 1))},
      {"request", decode::GrpcMessagesJson(req.body.content, req.body.truncated)},
      {"status", nullptr}};
  if (flow.response) {
    const HttpResponse& resp = *flow.response;
    view["response"] = decode::GrpcMessagesJson(resp.body.content, resp.body.truncated);
    view["status"] = decode::GrpcStatusJson(resp.headers, resp.trailers);
  }
  return view;
}

}  // namespace mitmd::web

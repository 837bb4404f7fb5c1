#include "api/problem.h"

#include "api/json_util.h"

namespace sw::api {
namespace {

std::string_view titleFor(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
  }
}

}  // namespace

int httpStatusFor(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kResourceExhausted: return 429;
    case Code::kUnavailable: return 503;
    case Code::kInternal: return 500;
  }
  return 500;
}

Response problem(int status, std::string_view code, std::string_view detail, std::string_view field) {
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  JsonWriter w;
  w.beginObject();
  w.key("type").string("about:blank");
  w.key("title").string(titleFor(status));
  w.key("status").integer(status);
  w.key("code").string(code);
  w.key("detail").string(detail);
  if (!field.empty()) w.key("field").string(field);
  w.endObject();
  r.body = w.take();
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Response errorResponse(const Error& e) {
  return problem(httpStatusFor(e.code), codeName(e.code), e.message, e.field);
}

}  // namespace sw::api

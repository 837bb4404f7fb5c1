#pragma once
// RFC 9457 problem details: every error response is application/problem+json with a stable
// machine-readable "code".
#include <string>

#include "api/http_types.h"
#include "core/status.h"

namespace sw::api {

int httpStatusFor(Code code);
Response problem(int status, std::string_view code, std::string_view detail, std::string_view field = {});
Response errorResponse(const Error& error);

}  // namespace sw::api

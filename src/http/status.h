#pragma once
// The reason phrase of an HTTP status code (RFC 9110 section 15), for responses mitmd writes
// itself: error pages, the viewer's API. One table for the whole program.

#include <string_view>

namespace mitmd::http {

// "Not Found" for 404; "Informational", "Success", "Redirection", "Client Error" or "Server
// Error" for a code the table does not name; "Unknown" outside 100-599.
std::string_view ReasonPhrase(int status);

}  // namespace mitmd::http

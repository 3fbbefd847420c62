// HttpTransport: the only way the app talks to the network. The libcurl one is real; tests fake it.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kHttpConnect = "http_connect";  // error code
inline constexpr const char* kHttpFailed = "http_failed";  // error code
inline constexpr const char* kHttpStatus = "http_status";  // error code
inline constexpr const char* kHttpTimeout = "http_timeout";  // error code
inline constexpr const char* kHttpTls = "http_tls";  // error code

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Authorization", "Basic ..."}
  std::string body;                                          // POST body, already encoded
  long connect_timeout_ms = 3000;
  long total_timeout_ms = 10000;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Performs the request. Network failures (refused, timeout, TLS) are Errors with codes
  // "http_connect", "http_timeout", "http_tls", "http_failed"; any HTTP status is a success value.
  virtual Result<HttpResponse> perform(const HttpRequest& request) = 0;
};

// libcurl implementation: TLS verification on, timeouts from the request, bodies capped at 1 MiB,
// redirects not followed. One easy handle reused per process (connection reuse). libcurl is
// dlopen'ed on the first perform, not linked: a missing library is an Error "http_failed".
class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(std::string library = "libcurl.so.4");
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;
  Result<HttpResponse> perform(const HttpRequest& request) override;

 private:
  std::string library_;
  const void* api_;  // the resolved libcurl entry points, set on first perform
  void* handle_;     // CURL*, created on first perform
};

}  // namespace kinde

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "http/transport.hpp"

namespace kinde {
namespace {

constexpr std::size_t kMaxBody = 1024 * 1024;  // discovery, JWKS and token answers are small

struct Sink {
  HttpResponse* res;
  bool overflow = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::size_t len = size * n;
  if (sink->res->body.size() + len > kMaxBody) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->res->body.append(data, len);
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* res = static_cast<HttpResponse*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t");
    auto e = value.find_last_not_of(" \t\r\n");
    res->headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

CurlTransport::CurlTransport() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  handle_ = curl_easy_init();
}

CurlTransport::~CurlTransport() {
  if (handle_) curl_easy_cleanup(static_cast<CURL*>(handle_));
}

Result<HttpResponse> CurlTransport::perform(const HttpRequest& request) {
  CURL* h = static_cast<CURL*>(handle_);
  if (!h) return make_error("http_failed", "libcurl could not be initialised");
  curl_easy_reset(h);
  HttpResponse res;
  Sink sink{&res};
  std::unique_ptr<curl_slist, SlistFree> headers;
  for (const auto& [k, v] : request.headers) {
    std::string line = k;
    line += ": ";
    line += v;
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, request.total_timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "kinde-fcgi/1.0");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &res);
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    std::string what = curl_easy_strerror(rc);
    if (sink.overflow) return make_error("http_failed", "response larger than 1 MiB from " + request.url);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT: return make_error("http_timeout", what + " (" + request.url + ")");
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST: return make_error("http_connect", what + " (" + request.url + ")");
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION: return make_error("http_tls", what + " (" + request.url + ")");
      default: return make_error("http_failed", what + " (" + request.url + ")");
    }
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace kinde

// ForkedTransport: each provider call runs in a child process forked for it, so a long-lived
// FastCGI process never loads libcurl.
//
// Why: a process that has called the provider once keeps libcurl's ~30 libraries mapped (each with
// a few private pages of relocated data), libcurl's handle, the TLS library's state and the parsed
// CA store for the rest of its life: about 0.5 MB of private memory in every FastCGI process, for
// calls that happen at sign-in and refresh only. The child is forked from the serving process
// (cheap: copy-on-write), performs the request with the inner transport, writes the answer to a
// pipe and exits; what it loaded goes with it. What it costs: no connection or TLS session reuse
// between provider calls (each call connects afresh), and libcurl is loaded once per call.
// Plain CGI does not use it: the process exits after one request anyway.
#pragma once
#include <memory>

#include "http/transport.hpp"

namespace kinde {

class ForkedTransport : public HttpTransport {
 public:
  explicit ForkedTransport(std::unique_ptr<HttpTransport> inner);
  // The inner transport's answer or Error, passed back whole. The parent waits at most the
  // request's total_timeout_ms plus kChildGraceMs; then the child is killed and the answer is an
  // Error "http_timeout". A child that dies without a full answer is an Error "http_failed". When
  // fork() fails, the request runs in this process (logged once).
  Result<HttpResponse> perform(const HttpRequest& request) override;

  static constexpr long kChildGraceMs = 500;  // the child's set-up (fork, loading libcurl) beyond curl's own timer

 private:
  std::unique_ptr<HttpTransport> inner_;
};

}  // namespace kinde

// A request as a whole (build_request_from_text -> build_request through cgicc): a canned CGI
// environment plus body. Hostile variables (CONTENT_LENGTH lies, bad escapes, huge cookies, odd
// content types) must end in Request::bad, never in a crash, an exception or an unbounded read.
#include "cgi/request.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kinde::Request r = kinde::build_request_from_text(kinde::fuzz::as_text(data, size));
  FUZZ_CHECK(!r.method.empty());
  FUZZ_CHECK(!r.path_info.empty());
  FUZZ_CHECK(r.body.size() <= kinde::kMaxBodyBytes);
  FUZZ_CHECK(r.script_name != "/");
  if (r.bad) FUZZ_CHECK(r.bad->first == 400 || r.bad->first == 413);
  if (!r.bad) {
    // A request that is not "bad" had a parseable query string.
    FUZZ_CHECK(kinde::parse_query(r.query_string).has_value());
  }
  // The accessors handlers call first.
  (void)r.wants_json();
  (void)r.cookie("kinde_fcgi_session");
  (void)r.header("authorization");
  return 0;
}

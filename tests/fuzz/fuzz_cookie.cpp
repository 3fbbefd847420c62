// Cookie header parsing (parse_cookie_header): hostile Cookie headers must never crash, and the pairs
// returned must respect the parser's own promises (bounded count, non-empty names, no separators).
#include "fuzz_common.hpp"
#include "util/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view header = kinde::fuzz::as_text(data, size);
  // The first byte also picks a small cap, so the max_cookies branch is exercised, not only 200.
  std::size_t cap = size > 0 ? data[0] % 8 : 0;
  for (std::size_t max : {std::size_t{200}, cap}) {
    kinde::Params cookies = kinde::parse_cookie_header(header, max);
    FUZZ_CHECK(cookies.size() <= max);
    for (const auto& [name, value] : cookies) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(name.find('=') == std::string::npos);
      FUZZ_CHECK(name.find(';') == std::string::npos && value.find(';') == std::string::npos);
      FUZZ_CHECK(name.size() + value.size() <= header.size());
    }
    // find_param sees what parse returned: the first cookie of a name wins.
    if (!cookies.empty()) {
      auto first = kinde::find_param(cookies, cookies.front().first);
      FUZZ_CHECK(first && *first == cookies.front().second);
      FUZZ_CHECK(kinde::count_param(cookies, cookies.front().first) >= 1);
    }
  }
  return 0;
}

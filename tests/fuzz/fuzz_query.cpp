// Query strings and form bodies (parse_query, percent_decode): no crash on hostile input, and the
// encoder and decoder agree: whatever parse_query accepts survives build_query + parse_query unchanged,
// and percent_decode(url_encode(x)) == x for every byte string.
#include "fuzz_common.hpp"
#include "util/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = kinde::fuzz::as_text(data, size);

  auto params = kinde::parse_query(text);
  if (params) {
    for (const auto& [name, value] : *params) {
      // parse_query promises no NUL byte in what it returns.
      FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
    }
    auto again = kinde::parse_query(kinde::build_query(*params));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *params);  // same pairs, same order, duplicates kept
  }

  for (bool plus : {false, true}) {
    auto decoded = kinde::percent_decode(text, plus);
    if (decoded) FUZZ_CHECK(decoded->size() <= text.size());
  }

  std::string encoded = kinde::url_encode(text);
  auto back = kinde::percent_decode(encoded, false);
  FUZZ_CHECK(back && *back == text);
  auto back_plus = kinde::percent_decode(encoded, true);  // url_encode never emits '+'
  FUZZ_CHECK(back_plus && *back_plus == text);
  return 0;
}

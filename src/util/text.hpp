// Text helpers every layer uses, each written once: trimming, prefix/suffix tests, UTF-8 decoding and
// a constant-time compare for secrets.
#pragma once
#include <string>
#include <string_view>

namespace kinde {

// s without leading and trailing spaces, tabs, CR and LF.
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). decode_utf8 appends the code
// points to out and returns false at the first invalid sequence.
bool decode_utf8(std::string_view s, std::u32string& out);
bool is_valid_utf8(std::string_view s);

// Equality whose time depends only on the lengths (for MACs, state values and other secrets).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kinde

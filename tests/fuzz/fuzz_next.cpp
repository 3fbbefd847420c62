// The "next" filter (safe_next_path) with its security property: whatever it returns other than "/"
// is a same-site path once fully percent-decoded (decoded until stable, as a chain of redirects or a
// lenient server might): exactly one leading '/', second character neither '/' nor '\', and no
// control character or backslash anywhere. Anything else is an open redirect: abort().
#include <string>

#include "fuzz_common.hpp"
#include "util/url.hpp"

namespace {

bool same_site_path(const std::string& s) {
  if (s.empty() || s[0] != '/') return false;
  if (s.size() > 1 && (s[1] == '/' || s[1] == '\\')) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f || c == '\\') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view target = kinde::fuzz::as_text(data, size);
  std::string out = kinde::safe_next_path(target);
  if (out == "/") return 0;
  // It returns the target unchanged or "/", nothing in between.
  FUZZ_CHECK(out == target);
  FUZZ_CHECK(same_site_path(out));
  // Decode layer by layer (with and without '+' as space) until stable or undecodable: every layer
  // must still be a same-site path.
  for (bool plus : {false, true}) {
    std::string layer = out;
    for (int i = 0; i < 16; ++i) {
      auto d = kinde::percent_decode(layer, plus);
      if (!d || *d == layer) break;
      layer = std::move(*d);
      FUZZ_CHECK(same_site_path(layer));
    }
  }
  return 0;
}

// Config text (parse_dotenv): no crash on any file, keys are valid names, and every parsed map written
// back as KEY="escaped value" lines parses to the same map (the quoting rules are self-consistent).
#include <string>

#include "config/config.hpp"
#include "fuzz_common.hpp"

namespace {

bool valid_name(const std::string& k) {
  if (k.empty() || (k[0] >= '0' && k[0] <= '9')) return false;
  for (char c : k)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') { out += '\\'; out += c; }
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = kinde::parse_dotenv(kinde::fuzz::as_text(data, size));
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code == kinde::kConfigSyntax);
    FUZZ_CHECK(parsed.error().detail.rfind("line ", 0) == 0);  // errors name the line
    return 0;
  }
  std::string text;
  for (const auto& [k, v] : *parsed) {
    FUZZ_CHECK(valid_name(k));
    text += (text.size() % 2 ? "export " : "") + k + "=" + quoted(v) + "\n";
  }
  auto again = kinde::parse_dotenv(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *parsed);
  return 0;
}

// Shared helpers of the libFuzzer targets in tests/fuzz/: a property check that aborts (so libFuzzer
// and the sanitizer replay both report it as a crash) and a deterministic Random.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "util/random.hpp"

// Every target defines this; libFuzzer calls it once per input, tests/fuzz/replay.cpp once per file.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace kinde::fuzz {

// Aborts with the failed property: a violated property is a bug exactly like a sanitizer report.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz property violated at %s:%d: %s\n", file, line, what);
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Counter-based bytes: the same sequence on every run, so a crash replays identically.
class FixedRandom : public Random {
 public:
  std::string bytes(std::size_t n) override {
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(counter_++ * 131u + 7u);
    return out;
  }

 private:
  unsigned counter_ = 0;
};

}  // namespace kinde::fuzz

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) ::kinde::fuzz::fail(#cond, __FILE__, __LINE__); \
  } while (0)

namespace kinde::fuzz {

// Fixed inputs shared by the targets and by make_seeds.cpp (which writes corpus seeds with them).
inline constexpr std::string_view kIssuer = "https://fuzz.kinde.com";
inline constexpr std::string_view kClientId = "fuzz_client_id";
inline constexpr std::string_view kAudience = "https://api.fuzz.example";
inline constexpr std::string_view kNonce = "n0nce-fuzz";
inline constexpr std::int64_t kNow = 1790000000;  // a fixed "now" (2026): seeds are valid at this time
// Session secret material (>= 32 bytes) and the session id the sealed seeds were made for.
inline constexpr std::string_view kSessionSecret = "fuzz-session-secret-material-0123456789abcdef";
inline constexpr std::string_view kSessionId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

}  // namespace kinde::fuzz

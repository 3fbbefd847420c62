#include "util/clock.hpp"

#include <chrono>
#include <ctime>

namespace kinde {

std::int64_t SystemClock::now() const { return static_cast<std::int64_t>(::time(nullptr)); }

std::int64_t SystemClock::monotonic_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace kinde

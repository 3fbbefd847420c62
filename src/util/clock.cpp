#include "util/clock.hpp"

#include <ctime>

namespace kinde {

std::int64_t SystemClock::now() const { return static_cast<std::int64_t>(::time(nullptr)); }

}  // namespace kinde

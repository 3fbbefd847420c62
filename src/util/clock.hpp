// Clock: the one source of "now". Handlers receive it; tests pass a FixedClock.
#pragma once
#include <cstdint>

namespace kinde {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual std::int64_t now() const = 0;
  // Milliseconds on a clock that never jumps (for deadlines); by default now() in ms.
  virtual std::int64_t monotonic_ms() const { return now() * 1000; }
};

// The real wall clock.
class SystemClock : public Clock {
 public:
  std::int64_t now() const override;
  std::int64_t monotonic_ms() const override;
};

// A clock that says what it is told; for tests.
class FixedClock : public Clock {
 public:
  explicit FixedClock(std::int64_t t) : t_(t) {}
  std::int64_t now() const override { return t_; }
  void set(std::int64_t t) { t_ = t; }
  void advance(std::int64_t s) { t_ += s; }

 private:
  std::int64_t t_;
};

}  // namespace kinde

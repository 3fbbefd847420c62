// Random: the one source of randomness (the kernel's getrandom(2); see random.cpp). Tests may hand in a fake.
#pragma once
#include <cstddef>
#include <string>

namespace kinde {

class Random {
 public:
  virtual ~Random() = default;
  // n cryptographically strong random bytes; throws std::runtime_error if the generator fails.
  virtual std::string bytes(std::size_t n) = 0;
  // 32 random bytes as base64url without padding (43 characters): ids, state, nonce, verifiers.
  std::string token(std::size_t n = 32);
};

class OpenSslRandom : public Random {
 public:
  std::string bytes(std::size_t n) override;
};

}  // namespace kinde

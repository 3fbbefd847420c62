#include "util/random.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "util/encoding.hpp"

namespace kinde {

std::string Random::token(std::size_t n) { return base64url_encode(bytes(n)); }

std::string OpenSslRandom::bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

}  // namespace kinde

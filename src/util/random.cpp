#include "util/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>

#include "util/encoding.hpp"

namespace kinde {

std::string Random::token(std::size_t n) { return base64url_encode(bytes(n)); }

// The kernel's generator (getrandom(2), blocking only until it is first seeded at boot), which
// OpenSSL's own RAND_bytes seeds from. Asking the kernel directly keeps OpenSSL's random generator
// (DRBG) unset until TLS needs it: setting it up costs about 8 M instructions, more than a whole
// signed-in CGI request otherwise, and fork safety comes for free.
std::string OpenSslRandom::bytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = getrandom(out.data() + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw std::runtime_error("getrandom failed");
    done += static_cast<std::size_t>(got);
  }
  return out;
}

}  // namespace kinde

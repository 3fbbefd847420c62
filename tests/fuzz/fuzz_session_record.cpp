// Session record decoding (open_session, peek_session_header). The first byte picks the mode:
//   even: the rest is a stored record, as an attacker with write access to the store could plant it;
//   odd:  the rest is created (8) | last_used (8) | plaintext, sealed here with the fixed key, so the
//         code after the GCM tag check (JSON parse, header fields) is reached with arbitrary bytes.
// Properties: an opened record always has the expected id and an object as data, and seal + open
// gives the same session back.
#include <memory>
#include <string>

#include <openssl/evp.h>

#include "fuzz_common.hpp"
#include "session/sealed.hpp"

namespace {

namespace fz = kinde::fuzz;

const std::string& fixed_key() {
  static const std::string key = kinde::derive_session_key(fz::kSessionSecret);
  return key;
}

// An independent AES-256-GCM sealer following the layout documented in sealed.hpp.
std::string seal_raw(std::string_view times, std::string_view plain) {
  std::string header = std::string(kinde::kSealedMagic) + static_cast<char>(kinde::kSealedVersion) + std::string(times);
  const std::string nonce(kinde::kSealedNonceSize, '\x5a');
  const std::string aad = header + kinde::session_id_hash(fz::kSessionId);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string ct(plain.size(), '\0');
  std::string tag(kinde::kSealedTagSize, '\0');
  auto u = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  auto w = [](std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); };
  int len = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, u(fixed_key()), u(nonce)) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), w(ct), &len, reinterpret_cast<const unsigned char*>(plain.data()),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), w(ct) + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), w(tag)) == 1;
  if (!ok) fz::fail("harness AES-GCM sealing failed", __FILE__, __LINE__);
  return header + nonce + ct + tag;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest = fz::as_text(data, size).substr(1);
  std::string blob;
  if (data[0] % 2 == 0) {
    blob = std::string(rest);
  } else {
    if (rest.size() < 16 || rest.size() > 64 * 1024) return 0;
    blob = seal_raw(rest.substr(0, 16), rest.substr(16));
  }
  std::int64_t created = 0, last_used = 0;
  const bool has_header = kinde::peek_session_header(blob, created, last_used);

  auto s = kinde::open_session(blob, fixed_key(), std::string(fz::kSessionId));
  if (!s) {
    FUZZ_CHECK(s.error().code == kinde::kSessionRecordInvalid);
    return 0;
  }
  FUZZ_CHECK(has_header && created == s->created && last_used == s->last_used);
  FUZZ_CHECK(s->id == fz::kSessionId);
  FUZZ_CHECK(s->data.is_object());
  // The same bytes never open under another id (the id hash is associated data).
  FUZZ_CHECK(!kinde::open_session(blob, fixed_key(), std::string(fz::kSessionId.substr(1)) + "B").ok());

  fz::FixedRandom random;
  std::string resealed = kinde::seal_session(*s, fixed_key(), random);
  auto again = kinde::open_session(resealed, fixed_key(), s->id);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->created == s->created && again->last_used == s->last_used && again->data == s->data);
  return 0;
}

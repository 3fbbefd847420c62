#include "session/sealed.hpp"
#include "util/url.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <stdexcept>

namespace kinde {
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
using Kdf = std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)>;
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)>;

constexpr std::string_view kHkdfInfo = "kinde-fcgi session v1";

void put_u64(std::string& out, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((u >> shift) & 0xff);
}

std::int64_t get_u64(std::string_view in) {
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
  return static_cast<std::int64_t>(u);
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

Error invalid(std::string detail) { return make_error("session_record_invalid", std::move(detail)); }

}  // namespace

std::string derive_session_key(std::string_view material) {
  if (material.size() < 32) throw std::invalid_argument("session secret shorter than 32 bytes");
  Kdf kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), &EVP_KDF_free);
  if (!kdf) throw std::runtime_error("HKDF not available");
  KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_KDF_CTX_new failed");
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads them for these keys.
  std::string digest = "SHA256";
  std::string key_copy(material);
  std::string info(kHkdfInfo);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key_copy.data(), key_copy.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  std::string out(32, '\0');
  int rc = EVP_KDF_derive(ctx.get(), bytes(out), out.size(), params);
  OPENSSL_cleanse(key_copy.data(), key_copy.size());
  if (rc != 1) throw std::runtime_error("HKDF derivation failed");
  return out;
}

std::string session_id_hash(std::string_view id) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(id.data(), id.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

bool peek_session_header(std::string_view blob, std::int64_t& created, std::int64_t& last_used) {
  if (blob.size() < kSealedHeaderSize) return false;
  if (blob.substr(0, kSealedMagic.size()) != kSealedMagic) return false;
  if (static_cast<unsigned char>(blob[3]) != kSealedVersion) return false;
  created = get_u64(blob.substr(4, 8));
  last_used = get_u64(blob.substr(12, 8));
  return true;
}

std::string seal_session(const Session& s, std::string_view key, Random& random) {
  if (key.size() != 32) throw std::invalid_argument("session key must be 32 bytes");
  std::string header(kSealedMagic);
  header += static_cast<char>(kSealedVersion);
  put_u64(header, s.created);
  put_u64(header, s.last_used);
  // The id hash, not the id, goes into the AAD: the record itself never needs the id.
  const std::string aad = header + session_id_hash(s.id);
  // replace: a non-UTF-8 string in data must not throw out of a save.
  const std::string plain = s.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string nonce = random.bytes(kSealedNonceSize);
  if (nonce.size() != kSealedNonceSize) throw std::runtime_error("random source returned a short nonce");

  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
  std::string ct(plain.size(), '\0');
  std::string tag(kSealedTagSize, '\0');
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealedNonceSize), nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), bytes(ct), &len, bytes(plain), static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), bytes(ct) + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kSealedTagSize), tag.data()) == 1;
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed");
  return header + nonce + ct + tag;
}

Result<Session> open_session(std::string_view blob, std::string_view key, const std::string& expected_id) {
  if (key.size() != 32) return invalid("key is not 32 bytes");
  if (blob.size() < kSealedMagic.size() || blob.substr(0, kSealedMagic.size()) != kSealedMagic) {
    return invalid("bad magic (not a session record)");
  }
  if (blob.size() < kSealedMagic.size() + 1) return invalid("truncated record (no version)");
  const auto version = static_cast<unsigned char>(blob[3]);
  if (version != kSealedVersion) {
    return invalid("unsupported format version " + std::to_string(version));
  }
  if (blob.size() < kSealedHeaderSize + kSealedNonceSize + kSealedTagSize) {
    return invalid("truncated record (" + std::to_string(blob.size()) + " bytes)");
  }
  if (blob.size() > kSealedMaxSize) return invalid("record too large");

  const std::string_view header = blob.substr(0, kSealedHeaderSize);
  const std::string nonce(blob.substr(kSealedHeaderSize, kSealedNonceSize));
  const std::string_view ct =
      blob.substr(kSealedHeaderSize + kSealedNonceSize, blob.size() - kSealedHeaderSize - kSealedNonceSize - kSealedTagSize);
  std::string tag(blob.substr(blob.size() - kSealedTagSize));
  const std::string aad = std::string(header) + session_id_hash(expected_id);

  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) return invalid("cipher context allocation failed");
  std::string plain(ct.size(), '\0');
  int len = 0;
  bool ok = EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealedNonceSize), nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), bytes(plain), &len, bytes(ct), static_cast<int>(ct.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kSealedTagSize), tag.data()) == 1;
  // Final checks the tag: one answer for a flipped bit, a foreign key and another id's record,
  // because GCM cannot tell them apart.
  if (!ok || EVP_DecryptFinal_ex(ctx.get(), bytes(plain) + len, &len) != 1) {
    return invalid("authentication failed (tampered, another key, or another session's record)");
  }
  auto data = nlohmann::json::parse(plain, nullptr, /*allow_exceptions=*/false);
  if (data.is_discarded()) return invalid("payload is not JSON");
  // Session::data is always an object (handlers index it by name); found by fuzzing: a record whose
  // payload was a valid non-object JSON value ("[1,2,3]", "5") opened as a session.
  if (!data.is_object()) return invalid("payload is not a JSON object");

  Session s;
  s.id = expected_id;
  s.created = get_u64(header.substr(4, 8));
  s.last_used = get_u64(header.substr(12, 8));
  s.data = std::move(data);
  return s;
}

}  // namespace kinde

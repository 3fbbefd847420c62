#include "session/sealed.hpp"

#include "util/encoding.hpp"
#include "util/url.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace kinde {
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

constexpr std::string_view kHkdfInfo = "kinde-fcgi session v1";
constexpr std::string_view kSealerInfo = "kinde-fcgi sign-in v1";
constexpr unsigned char kSealerVersion = 1;

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

Error invalid(std::string detail) { return make_error(kSessionRecordInvalid, std::move(detail)); }

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

// SHA-256 and AES-256-GCM fetched once per process: the legacy EVP_sha256() / EVP_aes_256_gcm() make
// OpenSSL 3 fetch again (a lock and a lookup) at every init. Never freed on purpose (as jws.cpp's).
const EVP_MD* sha256() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) throw std::runtime_error("SHA-256 not available");
  return md;
}

const EVP_CIPHER* aes_256_gcm() {
  static const EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!cipher) throw std::runtime_error("AES-256-GCM not available");
  return cipher;
}

constexpr std::size_t kSha256Size = 32;
constexpr std::size_t kSha256Block = 64;

// HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256 digest. Built from the digest, not EVP_MAC or
// EVP_KDF: a process's first fetch of a KDF or MAC makes OpenSSL 3 build that operation's method
// table, which a plain-CGI request would pay on every start (0.8 M instructions of a 12.5 M request);
// the SHA-256 digest is fetched anyway (session_id_hash).
std::string hmac_sha256(std::string_view key, std::string_view message) {
  const EVP_MD* md = sha256();
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_MD_CTX_new failed");
  unsigned char block[kSha256Block] = {};
  unsigned int len = 0;
  if (key.size() > kSha256Block) {
    // A key longer than the block is hashed first (RFC 2104 section 2).
    if (EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 || EVP_DigestUpdate(ctx.get(), key.data(), key.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), block, &len) != 1) {
      throw std::runtime_error("SHA-256 failed");
    }
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[kSha256Block];
  unsigned char inner[kSha256Size];
  for (std::size_t i = 0; i < kSha256Block; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
  bool ok = EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1 && EVP_DigestUpdate(ctx.get(), pad, sizeof pad) == 1 &&
            EVP_DigestUpdate(ctx.get(), message.data(), message.size()) == 1 &&
            EVP_DigestFinal_ex(ctx.get(), inner, &len) == 1;
  for (std::size_t i = 0; i < kSha256Block; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
  std::string out(kSha256Size, '\0');
  ok = ok && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1 && EVP_DigestUpdate(ctx.get(), pad, sizeof pad) == 1 &&
       EVP_DigestUpdate(ctx.get(), inner, sizeof inner) == 1 && EVP_DigestFinal_ex(ctx.get(), bytes(out), &len) == 1;
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner, sizeof inner);
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

// HKDF-SHA256(material, info) -> 32 bytes.
std::string hkdf_key(std::string_view material, std::string_view info_text) {
  if (material.size() < 32) throw std::invalid_argument("session secret shorter than 32 bytes");
  return hkdf_sha256(material, "", info_text, 32);
}

}  // namespace

std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t length) {
  if (length > 255 * kSha256Size) throw std::invalid_argument("HKDF output longer than 255 blocks");
  // Extract: PRK = HMAC(salt, IKM), an absent salt being HashLen zero bytes (RFC 5869 section 2.2).
  std::string prk = hmac_sha256(salt.empty() ? std::string(kSha256Size, '\0') : std::string(salt), ikm);
  // Expand: T(i) = HMAC(PRK, T(i-1) | info | i), OKM the first `length` bytes of T(1) | T(2) | ...
  std::string okm, t, message;
  for (unsigned counter = 1; okm.size() < length; ++counter) {
    message.assign(t);
    message.append(info);
    message += static_cast<char>(counter);
    t = hmac_sha256(prk, message);
    okm += t;
  }
  OPENSSL_cleanse(prk.data(), prk.size());
  OPENSSL_cleanse(t.data(), t.size());
  OPENSSL_cleanse(message.data(), message.size());
  okm.resize(length);
  return okm;
}

std::string derive_session_key(std::string_view material) { return hkdf_key(material, kHkdfInfo); }

std::string session_id_hash(std::string_view id) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(id.data(), id.size(), md, &len, sha256(), nullptr) != 1) {
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

std::string refresh_grace_name(std::string_view spent_refresh_token) {
  return session_id_hash("kinde-fcgi refresh grace v1:" + std::string(spent_refresh_token));
}

bool peek_refresh_result_expiry(std::string_view blob, std::int64_t& expires_at) {
  if (blob.size() < kGraceHeaderSize || blob.substr(0, kGraceMagic.size()) != kGraceMagic) return false;
  if (static_cast<unsigned char>(blob[3]) != kSealedVersion) return false;
  expires_at = get_u64(blob.substr(4, 8));
  return true;
}

std::string seal_refresh_result(const nlohmann::json& result, std::int64_t expires_at, const std::string& name,
                                const std::string& session_id, std::string_view key, Random& random) {
  std::string header(kGraceMagic);
  header += static_cast<char>(kSealedVersion);
  put_u64(header, expires_at);
  const std::string plain = result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return header + aead_seal(key, header + name + session_id_hash(session_id), plain, random);
}

std::optional<nlohmann::json> open_refresh_result(std::string_view blob, const std::string& name,
                                                  const std::string& session_id, std::string_view key,
                                                  std::int64_t now) {
  std::int64_t expires_at = 0;
  if (key.size() != 32 || blob.size() > kSealedMaxSize || !peek_refresh_result_expiry(blob, expires_at)) return std::nullopt;
  if (expires_at <= now) return std::nullopt;
  const std::string aad = std::string(blob.substr(0, kGraceHeaderSize)) + name + session_id_hash(session_id);
  std::optional<std::string> plain = aead_open(key, aad, blob.substr(kGraceHeaderSize));
  if (!plain) return std::nullopt;
  auto j = nlohmann::json::parse(*plain, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return j;
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
  return header + aead_seal(key, aad, plain, random);
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
  const std::string aad = std::string(header) + session_id_hash(expected_id);
  // One answer for a flipped bit, a foreign key and another id's record: GCM cannot tell them apart.
  std::optional<std::string> plain = aead_open(key, aad, blob.substr(kSealedHeaderSize));
  if (!plain) return invalid("authentication failed (tampered, another key, or another session's record)");
  auto data = nlohmann::json::parse(*plain, nullptr, /*allow_exceptions=*/false);
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

std::string aead_seal(std::string_view key, std::string_view aad, std::string_view plain, Random& random) {
  if (key.size() != 32) throw std::invalid_argument("AES-256-GCM key must be 32 bytes");
  const std::string nonce = random.bytes(kSealedNonceSize);
  if (nonce.size() != kSealedNonceSize) throw std::runtime_error("random source returned a short nonce");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
  std::string ct(plain.size(), '\0');
  std::string tag(kSealedTagSize, '\0');
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx.get(), aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealedNonceSize), nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), bytes(ct), &len, bytes(plain), static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), bytes(ct) + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kSealedTagSize), tag.data()) == 1;
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed");
  return nonce + ct + tag;
}

std::optional<std::string> aead_open(std::string_view key, std::string_view aad, std::string_view blob) {
  if (key.size() != 32 || blob.size() < kSealedNonceSize + kSealedTagSize) return std::nullopt;
  const std::string_view nonce = blob.substr(0, kSealedNonceSize);
  const std::string_view ct = blob.substr(kSealedNonceSize, blob.size() - kSealedNonceSize - kSealedTagSize);
  std::string tag(blob.substr(blob.size() - kSealedTagSize));
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) return std::nullopt;
  std::string plain(ct.size(), '\0');
  int len = 0;
  bool ok = EVP_DecryptInit_ex(ctx.get(), aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealedNonceSize), nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), bytes(plain), &len, bytes(ct), static_cast<int>(ct.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kSealedTagSize), tag.data()) == 1;
  // Final checks the tag.
  if (!ok || EVP_DecryptFinal_ex(ctx.get(), bytes(plain) + len, &len) != 1) return std::nullopt;
  return plain;
}

namespace {

class KeySealer : public Sealer {
 public:
  KeySealer(std::string key, Random& random) : key_(std::move(key)), random_(random) {}
  ~KeySealer() override { OPENSSL_cleanse(key_.data(), key_.size()); }
  KeySealer(const KeySealer&) = delete;
  KeySealer& operator=(const KeySealer&) = delete;

  std::string seal(std::string_view plain, std::string_view context) override {
    const std::string version(1, static_cast<char>(kSealerVersion));
    return base64url_encode(version + aead_seal(key_, aad(version, context), plain, random_));
  }

  Result<std::string> open(std::string_view sealed, std::string_view context) const override {
    auto raw = base64url_decode(sealed);
    if (!raw || raw->empty()) return make_error(kSealedInvalid, "not base64url");
    if (static_cast<unsigned char>((*raw)[0]) != kSealerVersion)
      return make_error(kSealedInvalid, "unsupported version " + std::to_string(static_cast<unsigned char>((*raw)[0])));
    const std::string version = raw->substr(0, 1);
    auto plain = aead_open(key_, aad(version, context), std::string_view(*raw).substr(1));
    if (!plain) return make_error(kSealedInvalid, "authentication failed (tampered, another key, or another context)");
    return std::move(*plain);
  }

 private:
  // The label keeps these apart from any other use of the key; the context binds a value to its place.
  static std::string aad(const std::string& version, std::string_view context) {
    return std::string(kSealerInfo) + '\0' + version + std::string(context);
  }
  std::string key_;
  Random& random_;
};

}  // namespace

std::unique_ptr<Sealer> make_sealer(std::string_view key_material, Random& random) {
  return std::make_unique<KeySealer>(hkdf_key(key_material, kSealerInfo), random);
}

}  // namespace kinde

// Sealed values: a Session encrypted and authenticated (AES-256-GCM) for storage in a file or a
// key-value store (the file and Redis stores), and small values the browser keeps for us (the
// sign-in cookies, through Sealer). One AES-GCM implementation serves both.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "session/session.hpp"
#include "util/random.hpp"
#include "util/result.hpp"

namespace kinde {

// Record layout, all integers big-endian:
//   "KSR" (3) | format version (1) | created (8) | last_used (8) | nonce (12) | ciphertext | tag (16)
// The first 20 bytes are the header; header + session_id_hash(id) is the GCM associated data.
inline constexpr std::string_view kSealedMagic = "KSR";
inline constexpr unsigned char kSealedVersion = 1;
inline constexpr std::size_t kSealedHeaderSize = 20;
inline constexpr std::size_t kSealedNonceSize = 12;
inline constexpr std::size_t kSealedTagSize = 16;
// Records larger than this are refused on both sides (a session holds a few tokens, not megabytes).
inline constexpr std::size_t kSealedMaxSize = 1024 * 1024;

// 32-byte key derived (HKDF-SHA256, info "kinde-fcgi session v1") from secret material of any
// length >= 32 bytes; throws std::invalid_argument when shorter (callers check first).
std::string derive_session_key(std::string_view secret_material);

// HKDF-SHA256 (RFC 5869): `length` bytes (at most 255 * 32) from input key material, salt ("" : none,
// i.e. 32 zero bytes) and info. HMAC over OpenSSL's SHA-256; derive_session_key and make_sealer use it.
std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t length);

// Encodes a Session as: magic+format version, created, last_used, then AES-256-GCM(JSON data) with
// a random 12-byte nonce, the header and the session-id hash as associated data (so a record copied
// to another id's name fails). Throws std::invalid_argument on a key that is not 32 bytes.
std::string seal_session(const Session& s, std::string_view key, Random& random);

// The reverse; any mismatch (magic, version, length, tag, id) is an Error ("session_record_invalid",
// detail says which).
Result<Session> open_session(std::string_view blob, std::string_view key, const std::string& expected_id);

// The unauthenticated header of a record (for cheap expiry sweeps): false when blob is too short
// or has the wrong magic or version. Never trust these values for anything but garbage collection.
bool peek_session_header(std::string_view blob, std::int64_t& created, std::int64_t& last_used);

// Hex SHA-256 of the id (file/record name; a listing reveals no cookie).
std::string session_id_hash(std::string_view id);

// Refresh results kept for the grace period (session.hpp: keep_refresh_result). Layout, big-endian:
//   "KRG" (3) | format version (1) | expires_at (8) | nonce (12) | ciphertext | tag (16)
// sealed under the session key with the header, the record's name and the session-id hash as
// associated data: only the session that spent the token opens it, and only under that name.
inline constexpr std::string_view kGraceMagic = "KRG";
inline constexpr std::size_t kGraceHeaderSize = 12;

// The name a refresh result is kept under: hex SHA-256 of a domain label and the spent refresh token,
// so the token itself is never a file or key name.
std::string refresh_grace_name(std::string_view spent_refresh_token);

// Seals a refresh result (a JSON object) for session_id under `name`, valid until expires_at.
std::string seal_refresh_result(const nlohmann::json& result, std::int64_t expires_at, const std::string& name,
                                const std::string& session_id, std::string_view key, Random& random);

// The result, or nullopt when malformed, tampered, for another name or session, or expired at `now`.
std::optional<nlohmann::json> open_refresh_result(std::string_view blob, const std::string& name,
                                                  const std::string& session_id, std::string_view key,
                                                  std::int64_t now);

// The expiry in a grace record's header (for sweeps); false when it is not one.
bool peek_refresh_result_expiry(std::string_view blob, std::int64_t& expires_at);

// AES-256-GCM with a random 12-byte nonce: returns nonce | ciphertext | tag (16). Throws
// std::invalid_argument on a key that is not 32 bytes, std::runtime_error when OpenSSL fails.
std::string aead_seal(std::string_view key, std::string_view aad, std::string_view plain, Random& random);

// The reverse of aead_seal: the plain text, or nullopt when blob is too short or the tag does not
// verify (tampered, another key, other associated data).
std::optional<std::string> aead_open(std::string_view key, std::string_view aad, std::string_view blob);

// Seals small values the browser keeps for the app (the sign-in cookies): encrypted and
// authenticated, bound to a context (e.g. the cookie's name), as base64url text fit for a cookie
// value. The seam handlers use; tests may hand in their own.
class Sealer {
 public:
  virtual ~Sealer() = default;
  // base64url(version | AES-256-GCM(plain)) with context as associated data.
  virtual std::string seal(std::string_view plain, std::string_view context) = 0;
  // The plain text; Error "sealed_invalid" when malformed, tampered, sealed under another key or
  // for another context.
  virtual Result<std::string> open(std::string_view sealed, std::string_view context) const = 0;
};

// A Sealer keyed from the session key material (KINDE_SESSION_SECRET or the key file): HKDF-SHA256
// with its own info ("kinde-fcgi sign-in v1"), so every server sharing the secret opens what another
// sealed, and a sealed value can never pass for a session record. Throws std::invalid_argument when
// the material is shorter than 32 bytes. `random` must outlive the sealer.
std::unique_ptr<Sealer> make_sealer(std::string_view key_material, Random& random);

}  // namespace kinde

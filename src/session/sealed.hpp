// Sealed session records: a Session encrypted and authenticated (AES-256-GCM) for storage in a
// file or a key-value store. Shared by the file store and any later store (Redis).
#pragma once
#include <cstdint>
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

}  // namespace kinde

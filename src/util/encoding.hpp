// Byte encodings: base64url (RFC 4648 section 5, unpadded, as JOSE uses it), base64 and hex.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace kinde {

// Encodes bytes as base64url without '=' padding.
std::string base64url_encode(std::string_view bytes);
// Decodes base64url (padding tolerated only if correct); nullopt on any other character or bad length.
std::optional<std::string> base64url_decode(std::string_view text);
// Standard base64 with padding (for HTTP Basic auth).
std::string base64_encode(std::string_view bytes);
// Lower-case hex of bytes ("\x01\xab" -> "01ab").
std::string hex_encode(std::string_view bytes);

}  // namespace kinde

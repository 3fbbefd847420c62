#include "jose/jws.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "util/encoding.hpp"

namespace kinde {
namespace {

using json = nlohmann::json;

enum class Family { rsa_pkcs1, rsa_pss, ecdsa, eddsa };

// One allowed alg and the only key it may be used with (RFC 7518 3, RFC 8037 3.1): the JWK kty and curve,
// and the OpenSSL key type the built key must really have.
struct AlgInfo {
  std::string_view name;
  Family family;
  int digest;            // index into digest(); -1 for EdDSA, which hashes inside the signature scheme
  const char* kty;       // JWK key type: "RSA", "EC" or "OKP"
  const char* crv;       // EC / OKP: the only JWK curve allowed; nullptr for RSA
  int evp_type;          // EVP_PKEY_RSA, EVP_PKEY_EC or EVP_PKEY_ED25519
  int ec_bits;           // EC only: field size in bits (P-521 is 521, not 512)
};

// The allow-list. Anything not here (none, HS*, RSA1_5, Ed448...) is refused before any key work.
constexpr AlgInfo kAlgs[] = {
    {"RS256", Family::rsa_pkcs1, 0, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"RS384", Family::rsa_pkcs1, 1, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"RS512", Family::rsa_pkcs1, 2, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"PS256", Family::rsa_pss, 0, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"PS384", Family::rsa_pss, 1, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"PS512", Family::rsa_pss, 2, "RSA", nullptr, EVP_PKEY_RSA, 0},
    {"ES256", Family::ecdsa, 0, "EC", "P-256", EVP_PKEY_EC, 256},
    {"ES384", Family::ecdsa, 1, "EC", "P-384", EVP_PKEY_EC, 384},
    {"ES512", Family::ecdsa, 2, "EC", "P-521", EVP_PKEY_EC, 521},
    // RFC 8037 3.1: "EdDSA" names Ed25519 and Ed448 alike; only Ed25519 is accepted.
    {"EdDSA", Family::eddsa, -1, "OKP", "Ed25519", EVP_PKEY_ED25519, 0},
};

// Ed25519 signatures are R || S, 32 bytes each (RFC 8032 5.1.6).
constexpr std::size_t kEd25519SignatureBytes = 64;

const AlgInfo* find_alg(std::string_view alg) {
  for (const auto& a : kAlgs)
    if (a.name == alg) return &a;
  return nullptr;
}

// Digests fetched once per process: passing a legacy EVP_sha256() makes OpenSSL 3 do an implicit provider
// fetch on every verification, which is measurable on the bearer-token path. Never freed on purpose (the
// process owns them until exit; they stay reachable, so leak checkers do not report them).
const EVP_MD* digest(int index) {
  static const EVP_MD* const table[3] = {
      EVP_MD_fetch(nullptr, "SHA256", nullptr),
      EVP_MD_fetch(nullptr, "SHA384", nullptr),
      EVP_MD_fetch(nullptr, "SHA512", nullptr),
  };
  return table[index];
}

// The one key-type and curve binding, for JWK labels (kty, crv).
bool labels_fit(const AlgInfo& info, std::string_view kty, std::string_view crv) {
  return kty == info.kty && (info.crv ? crv == info.crv : crv.empty());
}

bool key_fits(const Jwk& key, const AlgInfo& info) {
  if (!key.alg.empty() && key.alg != info.name) return false;
  return labels_fit(info, key.kty, key.crv);
}

Error malformed(std::string detail) { return make_error(kJwtMalformed, std::move(detail)); }

Error bad_signature(std::string detail) {
  ERR_clear_error();  // keep OpenSSL's per-thread error queue clean for the next user (TLS)
  return make_error(kJwtBadSignature, std::move(detail));
}

// Decodes one part and parses it as a JSON object.
Result<json> json_part(std::string_view b64, const char* what) {
  auto bytes = base64url_decode(b64);
  if (!bytes) return malformed(std::string(what) + " is not base64url");
  json value = json::parse(bytes->begin(), bytes->end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return malformed(std::string(what) + " is not JSON");
  if (!value.is_object()) return malformed(std::string(what) + " is not a JSON object");
  return value;
}

// JWS (RFC 7518 3.4) carries ECDSA signatures as fixed-size big-endian R || S; OpenSSL wants DER.
bool ecdsa_raw_to_der(std::string_view raw, std::string& der) {
  const std::size_t half = raw.size() / 2;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  if (!sig) return false;
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), int(half), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + half), int(half), nullptr);
  if (!r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {  // set0 takes ownership only on success
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der.resize(std::size_t(len));
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &p) == len;
}

}  // namespace

bool is_allowed_alg(std::string_view alg) { return find_alg(alg) != nullptr; }

bool alg_fits_key(std::string_view alg, std::string_view kty, std::string_view crv) {
  const AlgInfo* info = find_alg(alg);
  return info && labels_fit(*info, kty, crv);
}

bool looks_like_jwt(std::string_view token) {
  std::size_t dots = 0;
  for (char c : token) dots += c == '.' ? 1 : 0;
  return dots == 2;
}

Result<Jws> parse_jws(std::string_view compact) {
  if (compact.empty()) return malformed("empty token");
  if (compact.size() > kMaxJwsSize)
    return malformed("token is " + std::to_string(compact.size()) + " bytes, more than 16384");
  const std::size_t d1 = compact.find('.');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : compact.find('.', d1 + 1);
  if (d2 == std::string_view::npos || compact.find('.', d2 + 1) != std::string_view::npos) {
    std::size_t parts = 1;
    for (char c : compact) parts += c == '.';
    return malformed("expected 3 dot-separated parts, found " + std::to_string(parts));
  }
  const std::string_view header_b64 = compact.substr(0, d1);
  const std::string_view payload_b64 = compact.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view signature_b64 = compact.substr(d2 + 1);
  if (header_b64.empty()) return malformed("header part is empty");
  if (payload_b64.empty()) return malformed("payload part is empty");
  // JWS uses unpadded base64url (RFC 7515 2); the shared decoder tolerates padding, the token format does not.
  if (compact.find('=') != std::string_view::npos) return malformed("token contains '=' padding");

  Jws jws;
  auto header = json_part(header_b64, "header");
  if (!header) return header.error();
  jws.header = std::move(*header);
  // RFC 7515 4.1.11: we understand no extension, so any "crit" makes the token unusable.
  if (jws.header.contains("crit")) return malformed("header has \"crit\", no extension is supported");
  auto alg = jws.header.find("alg");
  if (alg == jws.header.end() || !alg->is_string() || alg->get_ref<const std::string&>().empty())
    return malformed("header has no \"alg\" string");
  jws.alg = alg->get<std::string>();
  if (auto kid = jws.header.find("kid"); kid != jws.header.end()) {
    if (!kid->is_string()) return malformed("header \"kid\" is not a string");
    jws.kid = kid->get<std::string>();
  }
  auto payload = json_part(payload_b64, "payload");
  if (!payload) return payload.error();
  jws.payload = std::move(*payload);
  auto signature = base64url_decode(signature_b64);
  if (!signature) return malformed("signature is not base64url");
  jws.signature = std::move(*signature);
  jws.signing_input.assign(compact.data(), d2);
  return jws;
}

Result<const Jwk*> select_key(const Jws& jws, const std::vector<Jwk>& keys) {
  const AlgInfo* info = find_alg(jws.alg);
  if (!info) return make_error(kJwtAlgNotAllowed, "alg \"" + jws.alg + "\" is not allowed");
  if (!jws.kid.empty()) {
    // Prefer a key with this kid that can do the alg; a kid match of the wrong type is still returned so
    // that verification reports a key mismatch rather than a (re-fetch triggering) unknown kid.
    const Jwk* by_kid = nullptr;
    for (const auto& key : keys) {
      if (key.kid != jws.kid) continue;
      if (key_fits(key, *info)) return &key;
      if (!by_kid) by_kid = &key;
    }
    if (by_kid) return by_kid;
    return make_error(kJwtUnknownKid, "no key with kid \"" + jws.kid + "\"");
  }
  const Jwk* found = nullptr;
  std::size_t count = 0;
  for (const auto& key : keys) {
    if (!key_fits(key, *info)) continue;
    found = &key;
    ++count;
  }
  if (count == 1) return found;
  if (count == 0) return make_error(kJwtUnknownKid, "token has no kid and no key fits alg " + jws.alg);
  return make_error(kJwtAmbiguousKey,
                    "token has no kid and " + std::to_string(count) + " keys fit alg " + jws.alg);
}

Result<void> verify_jws_signature(const Jws& jws, const Jwk& key) {
  const AlgInfo* info = find_alg(jws.alg);
  if (!info) return make_error(kJwtAlgNotAllowed, "alg \"" + jws.alg + "\" is not allowed");
  if (!key.key || !key_fits(key, *info))
    return make_error(kJwtKeyMismatch, "key \"" + key.kid + "\" (" + key.kty + (key.alg.empty() ? "" : ", " + key.alg) +
                                              ") cannot verify " + jws.alg);
  // Check the real key as well as the labels: a hand-built Jwk could carry a wrong kty/crv string.
  EVP_PKEY* pkey = key.key.get();
  if (EVP_PKEY_get_base_id(pkey) != info->evp_type ||
      (info->family == Family::ecdsa && EVP_PKEY_get_bits(pkey) != info->ec_bits))
    return make_error(kJwtKeyMismatch, "key \"" + key.kid + "\" is not a " + std::string(info->name) + " key");

  std::string der;
  std::string_view sig = jws.signature;
  if (info->family == Family::ecdsa) {
    const std::size_t expected = 2 * std::size_t((info->ec_bits + 7) / 8);
    if (sig.size() != expected)
      return bad_signature(std::string(info->name) + " signature must be " + std::to_string(expected) + " bytes, got " +
                           std::to_string(sig.size()));
    if (!ecdsa_raw_to_der(sig, der)) return bad_signature("cannot convert the ECDSA signature");
    sig = der;
  } else if (info->family == Family::eddsa) {
    if (sig.size() != kEd25519SignatureBytes)
      return bad_signature("EdDSA signature must be 64 bytes, got " + std::to_string(sig.size()));
  } else if (sig.size() != std::size_t(EVP_PKEY_get_size(pkey))) {
    return bad_signature("RSA signature must be " + std::to_string(EVP_PKEY_get_size(pkey)) + " bytes, got " +
                         std::to_string(sig.size()));
  }

  // EdDSA is a one-shot scheme: no digest is named (OpenSSL wants NULL) and the whole input is passed at once.
  const EVP_MD* md = info->family == Family::eddsa ? nullptr : digest(info->digest);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if ((!md && info->family != Family::eddsa) || !ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey) != 1)
    return bad_signature("cannot set up verification");
  if (info->family == Family::rsa_pss &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
       // RFC 7518 3.5: the salt is exactly the digest length; DIGEST makes OpenSSL insist on that.
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    return bad_signature("cannot set up PSS verification");
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                  reinterpret_cast<const unsigned char*>(jws.signing_input.data()),
                                  jws.signing_input.size());
  if (rc != 1) return bad_signature("signature does not verify with key \"" + key.kid + "\"");
  return Ok{};
}

Result<Jws> verify_jwt(std::string_view compact, const std::vector<Jwk>& keys) {
  auto jws = parse_jws(compact);
  if (!jws) return jws.error();
  auto key = select_key(*jws, keys);
  if (!key) return key.error();
  auto verified = verify_jws_signature(*jws, **key);
  if (!verified) return verified.error();
  return jws;
}

}  // namespace kinde

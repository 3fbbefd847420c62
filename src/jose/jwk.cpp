#include "jose/jwk.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "util/encoding.hpp"
#include "jose/jws.hpp"

namespace kinde {
namespace {

using json = nlohmann::json;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

// Members that only a private (or symmetric) key has. A JWKS that publishes them is a provider mistake;
// using such a key would still be safe for verification, but refusing it makes the mistake visible.
constexpr const char* kPrivateMembers[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

// RSA public exponents are small (65537 in practice); a huge e only costs verification time.
constexpr std::size_t kMaxRsaExponentBytes = 8;

struct Curve {
  const char* jwk_name;
  const char* openssl_name;
  std::size_t coordinate_bytes;
};
constexpr Curve kCurves[] = {{"P-256", "prime256v1", 32}, {"P-384", "secp384r1", 48}, {"P-521", "secp521r1", 66}};

// RFC 8037 2: an Ed25519 public key "x" is the 32-byte encoded point (RFC 8032 5.1.5).
constexpr std::size_t kEd25519KeyBytes = 32;

Error jwk_error(const char* code, std::string detail) {
  // OpenSSL keeps failures on a per-thread queue; leaving them there would confuse later TLS code.
  ERR_clear_error();
  return make_error(code, std::move(detail));
}

// Reads an optional string member into out; a present non-string is malformed.
bool optional_string(const json& jwk, const char* name, std::string& out) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

Result<std::string> b64_member(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return jwk_error("jwk_malformed", std::string("missing member ") + name);
  auto bytes = base64url_decode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) return jwk_error("jwk_malformed", std::string("member ") + name + " is not base64url");
  return std::move(*bytes);
}

// Builds the EVP_PKEY from the collected parameters. With check_point, OpenSSL's quick public check runs
// (for EC: the point is on the curve; the order check is redundant on these cofactor-1 curves).
Result<std::shared_ptr<EVP_PKEY>> key_from_params(const char* type, OSSL_PARAM_BLD* bld, bool check_point) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld), OSSL_PARAM_free);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr), EVP_PKEY_CTX_free);
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0)
    return jwk_error("jwk_invalid_key", std::string("OpenSSL cannot build a ") + type + " key");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0 || raw == nullptr)
    return jwk_error("jwk_invalid_key", std::string("OpenSSL rejected the ") + type + " key parameters");
  std::shared_ptr<EVP_PKEY> key(raw, EVP_PKEY_free);
  if (check_point) {
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr), EVP_PKEY_CTX_free);
    if (!check || EVP_PKEY_public_check_quick(check.get()) != 1)
      return jwk_error("jwk_invalid_key", std::string("the ") + type + " public key fails OpenSSL's check");
  }
  return key;
}

Result<std::shared_ptr<EVP_PKEY>> rsa_key(const json& jwk) {
  auto n = b64_member(jwk, "n");
  if (!n) return n.error();
  auto e = b64_member(jwk, "e");
  if (!e) return e.error();
  BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), int(n->size()), nullptr), BN_free);
  BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), int(e->size()), nullptr), BN_free);
  if (!bn_n || !bn_e) return jwk_error("jwk_invalid_key", "out of memory reading n/e");
  const auto bits = std::size_t(BN_num_bits(bn_n.get()));
  if (bits < kMinRsaBits)
    return jwk_error("jwk_weak_key", "RSA modulus has " + std::to_string(bits) + " bits, at least 2048 required");
  if (bits > kMaxRsaBits) return jwk_error("jwk_unsupported", "RSA modulus larger than 16384 bits");
  if (std::size_t(BN_num_bytes(bn_e.get())) > kMaxRsaExponentBytes)
    return jwk_error("jwk_unsupported", "RSA exponent larger than 64 bits");
  // OpenSSL's RSA public check runs a primality test on n (about 5 ms for 2048 bits): too slow for a JWKS
  // parsed per CGI request, and no help for verification, since whoever controls the JWKS can sign anyway.
  // These cheap checks catch a broken key.
  if (!BN_is_odd(bn_n.get()) || !BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()))
    return jwk_error("jwk_invalid_key", "RSA n and e must be odd and e greater than 1");
  ParamBldPtr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
    return jwk_error("jwk_invalid_key", "cannot pass n/e to OpenSSL");
  return key_from_params("RSA", bld.get(), /*check_point=*/false);
}

Result<std::shared_ptr<EVP_PKEY>> ec_key(const json& jwk, const std::string& crv) {
  const Curve* curve = nullptr;
  for (const auto& c : kCurves)
    if (crv == c.jwk_name) curve = &c;
  if (!curve) return jwk_error("jwk_unsupported", "unsupported curve \"" + crv + "\"");
  auto x = b64_member(jwk, "x");
  if (!x) return x.error();
  auto y = b64_member(jwk, "y");
  if (!y) return y.error();
  // RFC 7518 6.2.1.2 wants the full field size, but glewlwyd 2.7 (rhonabwy) drops leading zero bytes: a
  // P-521 coordinate starts with 0x00 half of the time, and it publishes 65 bytes then. The big-endian
  // value is the same, so a shorter coordinate is padded back; a longer one is a broken key.
  if (x->size() > curve->coordinate_bytes || y->size() > curve->coordinate_bytes)
    return jwk_error("jwk_malformed", "EC coordinates must be at most " + std::to_string(curve->coordinate_bytes) +
                                          " bytes for " + crv);
  std::string point;
  point.reserve(1 + 2 * curve->coordinate_bytes);
  point += '\x04';  // SEC 1 uncompressed point: 04 || X || Y, each padded to the field size
  point.append(curve->coordinate_bytes - x->size(), '\0');
  point += *x;
  point.append(curve->coordinate_bytes - y->size(), '\0');
  point += *y;
  ParamBldPtr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->openssl_name, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    return jwk_error("jwk_invalid_key", "cannot pass the EC point to OpenSSL");
  return key_from_params("EC", bld.get(), /*check_point=*/true);
}

// RFC 8037 OKP keys: only Ed25519 signs with an alg we accept (Ed448 is not on the allow-list, X25519 and
// X448 are key-agreement curves). OpenSSL decodes the point only when verifying, so a broken x makes every
// signature fail rather than this call.
Result<std::shared_ptr<EVP_PKEY>> okp_key(const json& jwk, const std::string& crv) {
  if (crv != "Ed25519") return jwk_error("jwk_unsupported", "unsupported OKP curve \"" + crv + "\"");
  auto x = b64_member(jwk, "x");
  if (!x) return x.error();
  if (x->size() != kEd25519KeyBytes) return jwk_error("jwk_malformed", "an Ed25519 x must be 32 bytes");
  ParamBldPtr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, x->data(), x->size()))
    return jwk_error("jwk_invalid_key", "cannot pass the Ed25519 key to OpenSSL");
  return key_from_params("ED25519", bld.get(), /*check_point=*/false);
}

}  // namespace

Result<Jwk> parse_jwk(const json& jwk) {
  if (!jwk.is_object()) return jwk_error("jwk_malformed", "a JWK must be a JSON object");
  Jwk out;
  if (!optional_string(jwk, "kty", out.kty) || out.kty.empty())
    return jwk_error("jwk_malformed", "missing or non-string kty");
  if (!optional_string(jwk, "kid", out.kid) || !optional_string(jwk, "alg", out.alg) ||
      !optional_string(jwk, "use", out.use) || !optional_string(jwk, "crv", out.crv))
    return jwk_error("jwk_malformed", "kid, alg, use and crv must be strings");
  for (const char* member : kPrivateMembers)
    if (jwk.contains(member))
      return jwk_error("jwk_private", std::string("key \"") + out.kid + "\" has private member " + member);
  if (!out.use.empty() && out.use != "sig")
    return jwk_error("jwk_not_for_signing", "key \"" + out.kid + "\" has use \"" + out.use + "\"");
  if (auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    if (!ops->is_array()) return jwk_error("jwk_malformed", "key_ops must be an array");
    bool verify = false;
    for (const auto& op : *ops) verify = verify || (op.is_string() && op.get_ref<const std::string&>() == "verify");
    if (!verify) return jwk_error("jwk_not_for_signing", "key \"" + out.kid + "\" key_ops lacks \"verify\"");
  }

  Result<std::shared_ptr<EVP_PKEY>> key = jwk_error("jwk_unsupported", "unsupported kty \"" + out.kty + "\"");
  if (out.kty == "RSA") {
    if (!out.crv.empty()) return jwk_error("jwk_malformed", "an RSA key has no crv");
    key = rsa_key(jwk);
  } else if (out.kty == "EC") {
    key = ec_key(jwk, out.crv);
  } else if (out.kty == "OKP") {
    key = okp_key(jwk, out.crv);
  }
  if (!key) return key.error();
  // A key pinned to an algorithm we never accept (or that its type cannot do) is of no use for verification.
  if (!out.alg.empty() && !alg_fits_key(out.alg, out.kty, out.crv))
    return jwk_error("jwk_unsupported", "key \"" + out.kid + "\" has alg \"" + out.alg + "\"");
  out.key = std::move(*key);
  return out;
}

Result<std::vector<Jwk>> parse_jwks(std::string_view json_text) {
  json doc = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error(kJwksMalformed, "the JWKS is not JSON");
  if (!doc.is_object()) return make_error(kJwksMalformed, "the JWKS is not a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) return make_error(kJwksMalformed, "the JWKS has no \"keys\" array");
  std::vector<Jwk> out;
  out.reserve(keys->size());
  std::string skipped;  // why each unusable key was left out, for --check-config and logs
  for (const auto& entry : *keys) {
    auto jwk = parse_jwk(entry);
    if (jwk) {
      out.push_back(std::move(*jwk));
    } else if (skipped.size() < 512) {
      if (!skipped.empty()) skipped += "; ";
      skipped += jwk.error().code + ": " + jwk.error().detail;
    }
  }
  if (out.empty())
    return make_error(kJwksEmpty, "no usable signing key in the JWKS" + (skipped.empty() ? "" : " (" + skipped + ")"));
  return out;
}

}  // namespace kinde

// JOSE: base64url, JWK/JWKS parsing, compact JWS parsing, key selection and signature verification.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "util/encoding.hpp"
#include "jose/jwk.hpp"
#include "jose/jws.hpp"
#include "test_keys.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

using nlohmann::json;
using namespace kinde;
using namespace kinde::testing;

namespace {

std::vector<Jwk> keys_of(const std::vector<json>& jwks) {
  auto keys = parse_jwks(jwks_json(jwks));
  BOOST_REQUIRE_MESSAGE(keys.ok(), "parse_jwks failed: " + (keys.ok() ? std::string() : keys.error().detail));
  return std::move(keys).value();
}

json claims() { return {{"iss", "https://idp.example"}, {"sub", "kp_1"}, {"exp", 2000000000}}; }

std::string code_of(const Result<Jws>& r) { return r.ok() ? "ok" : r.error().code; }
std::string code_of(const Result<Jwk>& r) { return r.ok() ? "ok" : r.error().code; }
std::string code_of(const Result<std::vector<Jwk>>& r) { return r.ok() ? "ok" : r.error().code; }
std::string code_of(const Result<const Jwk*>& r) { return r.ok() ? "ok" : r.error().code; }
std::string code_of(const Result<void>& r) { return r.ok() ? "ok" : r.error().code; }

// Replaces one of the three parts of a compact token.
std::string with_part(const std::string& jwt, int index, const std::string& part) {
  const auto d1 = jwt.find('.');
  const auto d2 = jwt.find('.', d1 + 1);
  std::string parts[3] = {jwt.substr(0, d1), jwt.substr(d1 + 1, d2 - d1 - 1), jwt.substr(d2 + 1)};
  parts[index] = part;
  return parts[0] + "." + parts[1] + "." + parts[2];
}
std::string part_of(const std::string& jwt, int index) {
  const auto d1 = jwt.find('.');
  const auto d2 = jwt.find('.', d1 + 1);
  if (index == 0) return jwt.substr(0, d1);
  if (index == 1) return jwt.substr(d1 + 1, d2 - d1 - 1);
  return jwt.substr(d2 + 1);
}

struct AlgCase {
  const char* alg;
  const PKey& (*key)();
};
const AlgCase kAllowed[] = {{"RS256", rsa_key},   {"RS384", rsa_key},   {"RS512", rsa_key},
                            {"PS256", rsa_key},   {"PS384", rsa_key},   {"PS512", rsa_key},
                            {"ES256", ec256_key}, {"ES384", ec384_key}, {"ES512", ec521_key},
                            {"EdDSA", ed25519_key}};

const PKey& ed448_key() {
  static const PKey key = make_okp_key("Ed448");
  return key;
}

// Signs input with RSA-PSS and a chosen salt length (the JWS algs require the digest length).
std::string pss_signature(const std::string& input, const EVP_MD* md, int salt) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  BOOST_REQUIRE(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, rsa_key().get()) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1);
  std::size_t len = 512;
  std::string sig(len, '\0');
  BOOST_REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  sig.resize(len);
  return sig;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(jose)

// ---- base64url --------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(base64url_encodes_rfc4648_vectors_without_padding) {
  BOOST_TEST(base64url_encode("") == "");
  BOOST_TEST(base64url_encode("f") == "Zg");
  BOOST_TEST(base64url_encode("fo") == "Zm8");
  BOOST_TEST(base64url_encode("foo") == "Zm9v");
  BOOST_TEST(base64url_encode("foobar") == "Zm9vYmFy");
  BOOST_TEST(base64url_encode("\xfb\xff") == "-_8");
  BOOST_TEST(base64_encode("foob") == "Zm9vYg==");
  BOOST_TEST(base64_encode("\xfb\xff") == "+/8=");
}

BOOST_AUTO_TEST_CASE(base64url_round_trips_every_byte_and_length) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    auto decoded = base64url_decode(base64url_encode(bytes));
    BOOST_REQUIRE(decoded.has_value());
    BOOST_REQUIRE(*decoded == bytes);
    bytes += static_cast<char>((i * 37 + 11) & 0xFF);
  }
}

BOOST_AUTO_TEST_CASE(base64url_decode_accepts_only_correct_padding) {
  BOOST_TEST(base64url_decode("Zg").value() == "f");
  BOOST_TEST(base64url_decode("Zg==").value() == "f");
  BOOST_TEST(base64url_decode("Zm8=").value() == "fo");
  BOOST_TEST(!base64url_decode("Zg=").has_value());
  BOOST_TEST(!base64url_decode("Zg===").has_value());
  BOOST_TEST(!base64url_decode("Zm9v====").has_value());
  BOOST_TEST(!base64url_decode("====").has_value());
  BOOST_TEST(!base64url_decode("Z=g=").has_value());
}

BOOST_AUTO_TEST_CASE(base64url_decode_rejects_foreign_characters_bad_length_and_noncanonical_bits) {
  BOOST_TEST(!base64url_decode("+/8").has_value());    // standard alphabet
  BOOST_TEST(!base64url_decode("Zm 9v").has_value());  // whitespace
  BOOST_TEST(!base64url_decode("Zm9v\n").has_value());
  BOOST_TEST(!base64url_decode("Zm9vY").has_value());  // 5 chars: impossible length
  BOOST_TEST(!base64url_decode("Zh").has_value());     // "f" is Zg; Zh has non-zero leftover bits
  BOOST_TEST(!base64url_decode("Zm9").has_value());    // "fo" is Zm8
  BOOST_TEST(!base64url_decode(std::string("Zm\0v", 4)).has_value());
  BOOST_TEST(base64url_decode("").value().empty());
}

// ---- JWK / JWKS --------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parse_jwk_builds_rsa_and_ec_public_keys) {
  auto rsa = parse_jwk(jwk_json(rsa_key(), "r1", "RS256"));
  BOOST_REQUIRE(rsa.ok());
  BOOST_TEST(rsa->kid == "r1");
  BOOST_TEST(rsa->kty == "RSA");
  BOOST_TEST(rsa->alg == "RS256");
  BOOST_TEST(rsa->use == "sig");
  BOOST_TEST(EVP_PKEY_get_bits(rsa->key.get()) == 2048);
  // The built key is the same public key as the one that signs.
  BOOST_TEST(EVP_PKEY_eq(rsa->key.get(), rsa_key().get()) == 1);

  auto p256 = parse_jwk(jwk_json(ec256_key(), "e1"));
  BOOST_REQUIRE(p256.ok());
  BOOST_TEST(p256->crv == "P-256");
  BOOST_TEST(EVP_PKEY_eq(p256->key.get(), ec256_key().get()) == 1);
  auto p384 = parse_jwk(jwk_json(ec384_key(), "e2"));
  BOOST_REQUIRE(p384.ok());
  BOOST_TEST(p384->crv == "P-384");
  BOOST_TEST(EVP_PKEY_get_bits(p384->key.get()) == 384);
  auto p521 = parse_jwk(jwk_json(ec521_key(), "e3", "ES512"));
  BOOST_REQUIRE(p521.ok());
  BOOST_TEST(p521->crv == "P-521");
  BOOST_TEST(EVP_PKEY_get_bits(p521->key.get()) == 521);
  BOOST_TEST(EVP_PKEY_eq(p521->key.get(), ec521_key().get()) == 1);

  auto ed = parse_jwk(jwk_json(ed25519_key(), "o1", "EdDSA"));
  BOOST_REQUIRE(ed.ok());
  BOOST_TEST(ed->kty == "OKP");
  BOOST_TEST(ed->crv == "Ed25519");
  BOOST_TEST(EVP_PKEY_get_base_id(ed->key.get()) == EVP_PKEY_ED25519);
  BOOST_TEST(EVP_PKEY_eq(ed->key.get(), ed25519_key().get()) == 1);
}

BOOST_AUTO_TEST_CASE(ec_coordinates_without_leading_zero_bytes_are_padded_back) {
  // glewlwyd publishes P-521 coordinates with leading zero bytes dropped (65 bytes instead of 66): half of
  // all P-521 keys have one. The value is the same; the key must verify that key's ES512 tokens.
  for (int tries = 0; tries < 64; ++tries) {
    const PKey key = make_ec_key("P-521");
    json jwk = jwk_json(key, "short");
    const std::string x = *base64url_decode(jwk["x"].get<std::string>());
    if (x[0] != '\0') continue;
    jwk["x"] = base64url_encode(x.substr(x.find_first_not_of('\0')));
    BOOST_REQUIRE(base64url_decode(jwk["x"].get<std::string>())->size() < 66u);
    auto parsed = parse_jwk(jwk);
    BOOST_REQUIRE_MESSAGE(parsed.ok(), code_of(parsed));
    BOOST_TEST(EVP_PKEY_eq(parsed->key.get(), key.get()) == 1);
    BOOST_TEST(verify_jwt(sign_jwt({{"kid", "short"}}, claims(), key, "ES512"), {*parsed}).ok());
    return;
  }
  BOOST_FAIL("no P-521 key with a leading zero byte in 64 tries");
}

BOOST_AUTO_TEST_CASE(parse_jwk_binds_each_new_key_type_to_its_own_curve_and_alg) {
  auto with = [](json j, const char* name, json value) {
    j[name] = std::move(value);
    return j;
  };
  const json ed = jwk_json(ed25519_key(), "o1");
  BOOST_TEST(code_of(parse_jwk(ed)) == "ok");
  // OKP: Ed25519 only. Ed448 is EdDSA too, but not on the allow-list; X25519 is for key agreement.
  BOOST_TEST(code_of(parse_jwk(jwk_json(ed448_key(), "o2"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(ed448_key(), "o2", "EdDSA"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(ed, "crv", "X25519"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(ed, "crv", "P-256"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(jwk_json(ec256_key(), "e1"), "crv", "Ed25519"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(ed, "x", base64url_encode(std::string(31, 'x'))))) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(with(ed, "x", base64url_encode(std::string(33, 'x'))))) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(with(ed, "x", 5))) == "jwk_malformed");
  json no_x = ed;
  no_x.erase("x");
  BOOST_TEST(code_of(parse_jwk(no_x)) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(with(ed, "d", base64url_encode(std::string(32, 'd'))))) == "jwk_private");
  // A key pinned to an alg of another key type is of no use.
  BOOST_TEST(code_of(parse_jwk(with(ed, "alg", "ES256"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(ed, "alg", "RS256"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(ec521_key(), "e3", "ES384"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(ec384_key(), "e2", "ES512"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(ec521_key(), "e3", "EdDSA"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(rsa_key(), "r1", "EdDSA"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(rsa_key(), "r1", "ES512"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(jwk_json(rsa_key(), "r1", "PS512"))) == "ok");
  // P-521 coordinates are at most 66 bytes (521 bits rounded up).
  json p521 = jwk_json(ec521_key(), "e3");
  p521["x"] = base64url_encode(std::string(2, '\0') + *base64url_decode(p521["x"].get<std::string>()));
  BOOST_TEST(code_of(parse_jwk(p521)) == "jwk_malformed");
  // The RSA minimum size holds whatever RSA alg the key is pinned to.
  const PKey small = make_rsa_key(1024);
  for (const char* alg : {"PS384", "PS512", "RS256"}) BOOST_TEST(code_of(parse_jwk(jwk_json(small, "s", alg))) == "jwk_weak_key");
}

BOOST_AUTO_TEST_CASE(alg_fits_key_binds_each_alg_to_one_key_type_and_curve) {
  BOOST_TEST(alg_fits_key("ES512", "EC", "P-521"));
  BOOST_TEST(!alg_fits_key("ES512", "EC", "P-384"));
  BOOST_TEST(!alg_fits_key("ES512", "EC", "P-256"));
  BOOST_TEST(!alg_fits_key("ES384", "EC", "P-521"));
  BOOST_TEST(!alg_fits_key("ES512", "OKP", "Ed25519"));
  BOOST_TEST(alg_fits_key("EdDSA", "OKP", "Ed25519"));
  BOOST_TEST(!alg_fits_key("EdDSA", "OKP", "Ed448"));
  BOOST_TEST(!alg_fits_key("EdDSA", "OKP", "X25519"));
  BOOST_TEST(!alg_fits_key("EdDSA", "EC", "Ed25519"));
  BOOST_TEST(!alg_fits_key("EdDSA", "RSA", ""));
  for (const char* alg : {"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}) {
    BOOST_TEST(alg_fits_key(alg, "RSA", ""), alg);
    BOOST_TEST(!alg_fits_key(alg, "EC", "P-256"), alg);
    BOOST_TEST(!alg_fits_key(alg, "OKP", "Ed25519"), alg);
  }
  for (const char* alg : {"none", "HS256", "HS512"}) BOOST_TEST(!alg_fits_key(alg, "oct", ""), alg);
}

BOOST_AUTO_TEST_CASE(parse_jwk_rejects_private_encryption_weak_and_unsupported_keys) {
  auto with = [](json j, const char* name, json value) {
    j[name] = std::move(value);
    return j;
  };
  const json rsa = jwk_json(rsa_key(), "r1");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "d", "AQAB"))) == "jwk_private");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "use", "enc"))) == "jwk_not_for_signing");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "key_ops", json::array({"encrypt"})))) == "jwk_not_for_signing");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "key_ops", json::array({"verify"})))) == "ok");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "alg", "HS256"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "alg", "ES256"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "kty", "oct"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "kty", "OKP"))) == "jwk_unsupported");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "kid", 7))) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "n", "not base64!"))) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(json::array())) == "jwk_malformed");
  json no_e = rsa;
  no_e.erase("e");
  BOOST_TEST(code_of(parse_jwk(no_e)) == "jwk_malformed");
  BOOST_TEST(code_of(parse_jwk(jwk_json(make_rsa_key(1024), "small"))) == "jwk_weak_key");
  std::string n = *base64url_decode(rsa["n"].get<std::string>());
  n.back() = static_cast<char>(n.back() & ~1);
  BOOST_TEST(code_of(parse_jwk(with(rsa, "n", base64url_encode(n)))) == "jwk_invalid_key");
  BOOST_TEST(code_of(parse_jwk(with(rsa, "e", "AQ"))) == "jwk_invalid_key");     // e = 1
  BOOST_TEST(code_of(parse_jwk(with(rsa, "e", "AQAC"))) == "jwk_invalid_key");   // e even
  BOOST_TEST(code_of(parse_jwk(with(rsa, "e", "AQAAAAAAAAAAAQ"))) == "jwk_unsupported");  // 10-byte e
  BOOST_TEST(code_of(parse_jwk(jwk_json(ed448_key(), "ed448"))) == "jwk_unsupported");
}

BOOST_AUTO_TEST_CASE(parse_jwk_rejects_ec_points_of_wrong_size_or_off_the_curve) {
  const json ec = jwk_json(ec256_key(), "e1");
  json short_x = ec;  // a byte lost: another point, off the curve
  short_x["x"] = base64url_encode(base64url_decode(ec["x"].get<std::string>())->substr(1));
  BOOST_TEST(code_of(parse_jwk(short_x)) == "jwk_invalid_key");
  json long_x = ec;
  long_x["x"] = base64url_encode(std::string(1, '\0') + *base64url_decode(ec["x"].get<std::string>()));
  BOOST_TEST(code_of(parse_jwk(long_x)) == "jwk_malformed");
  json off_curve = ec;
  std::string y = *base64url_decode(ec["y"].get<std::string>());
  y.back() = static_cast<char>(y.back() ^ 1);
  off_curve["y"] = base64url_encode(y);
  BOOST_TEST(code_of(parse_jwk(off_curve)) == "jwk_invalid_key");
  json wrong_curve = ec;
  wrong_curve["crv"] = "P-384";  // 32-byte coordinates padded to 48 bytes: not a point of P-384
  BOOST_TEST(code_of(parse_jwk(wrong_curve)) == "jwk_invalid_key");
}

BOOST_AUTO_TEST_CASE(parse_jwks_keeps_only_usable_signing_keys) {
  json enc = jwk_json(rsa_key2(), "enc1");
  enc["use"] = "enc";
  json priv = jwk_json(rsa_key2(), "priv1");
  priv["d"] = "AQAB";
  const json oct = {{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}};
  const json unknown = {{"kty", "XYZ"}, {"kid", "what"}};
  const json ed448 = jwk_json(ed448_key(), "ed448");
  json x25519 = jwk_json(ed25519_key(), "x25519");
  x25519["crv"] = "X25519";
  auto keys = parse_jwks(jwks_json({enc, oct, jwk_json(rsa_key(), "good-rsa"), unknown, priv, ed448, x25519,
                                    jwk_json(ec256_key(), "good-ec"), jwk_json(ec521_key(), "good-p521"),
                                    jwk_json(ed25519_key(), "good-ed25519"), json("not an object")}));
  BOOST_REQUIRE(keys.ok());
  BOOST_REQUIRE(keys->size() == 4u);
  BOOST_TEST((*keys)[0].kid == "good-rsa");
  BOOST_TEST((*keys)[1].kid == "good-ec");
  BOOST_TEST((*keys)[2].kid == "good-p521");
  BOOST_TEST((*keys)[3].kid == "good-ed25519");
}

BOOST_AUTO_TEST_CASE(parse_jwks_reports_malformed_documents_and_empty_key_sets) {
  BOOST_TEST(code_of(parse_jwks("")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("<html>502 Bad Gateway</html>")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("{\"keys\":[")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("[]")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("{}")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("{\"keys\":{}}")) == "jwks_malformed");
  BOOST_TEST(code_of(parse_jwks("{\"keys\":[]}")) == "jwks_empty");
  json enc = jwk_json(rsa_key(), "enc1");
  enc["use"] = "enc";
  auto only_enc = parse_jwks(jwks_json({enc}));
  BOOST_TEST(code_of(only_enc) == "jwks_empty");
  BOOST_TEST(only_enc.error().detail.find("jwk_not_for_signing") != std::string::npos);
}

// ---- JWS parsing -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parse_jws_splits_a_token_into_header_payload_and_signature) {
  const std::string jwt = sign_jwt({{"kid", "k1"}, {"typ", "JWT"}}, claims(), rsa_key(), "RS256");
  auto jws = parse_jws(jwt);
  BOOST_REQUIRE(jws.ok());
  BOOST_TEST(jws->alg == "RS256");
  BOOST_TEST(jws->kid == "k1");
  BOOST_TEST(jws->payload["sub"] == "kp_1");
  BOOST_TEST(jws->signing_input == jwt.substr(0, jwt.rfind('.')));
  BOOST_TEST(jws->signature.size() == 256u);
}

BOOST_AUTO_TEST_CASE(parse_jws_rejects_malformed_tokens_naming_the_part) {
  const std::string good = sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS256");
  auto detail_has = [](const std::string& token, const std::string& words) {
    auto r = parse_jws(token);
    BOOST_TEST_CONTEXT("token " << token.substr(0, 60)) {
      BOOST_TEST(code_of(r) == "jwt_malformed");
      if (!r.ok()) BOOST_TEST(r.error().detail.find(words) != std::string::npos, r.error().detail);
    }
  };
  detail_has("", "empty");
  detail_has(part_of(good, 0) + "." + part_of(good, 1), "found 2");
  detail_has(good + ".AAAA", "found 4");
  detail_has("abc", "found 1");
  detail_has(with_part(good, 0, "e30!"), "header is not base64url");
  detail_has(with_part(good, 1, "@@@"), "payload is not base64url");
  detail_has(with_part(good, 2, "a+b/"), "signature is not base64url");
  detail_has(with_part(good, 0, base64url_encode("{\"alg\":")), "header is not JSON");
  detail_has(with_part(good, 0, b64_json(json::array({"RS256"}))), "header is not a JSON object");
  detail_has(with_part(good, 1, b64_json(json::array({1, 2}))), "payload is not a JSON object");
  detail_has(with_part(good, 1, b64_json("just a string")), "payload is not a JSON object");
  detail_has(with_part(good, 0, ""), "header part is empty");
  detail_has(with_part(good, 1, ""), "payload part is empty");
  detail_has(with_part(good, 0, b64_json({{"typ", "JWT"}})), "alg");
  detail_has(with_part(good, 0, b64_json({{"alg", 256}})), "alg");
  detail_has(with_part(good, 0, b64_json({{"alg", "RS256"}, {"kid", 1}})), "kid");
  detail_has(with_part(good, 0, b64_json({{"alg", "RS256"}, {"crit", json::array({"exp"})}})), "crit");
  detail_has(with_part(good, 1, base64url_encode(claims().dump()) + "="), "padding");
}

BOOST_AUTO_TEST_CASE(parse_jws_rejects_tokens_over_16_kib_and_accepts_up_to_it) {
  json big = claims();
  big["pad"] = std::string(20000, 'x');
  auto huge = parse_jws(sign_jwt({}, big, rsa_key(), "RS256"));
  BOOST_TEST(code_of(huge) == "jwt_malformed");
  BOOST_TEST(huge.error().detail.find("16384") != std::string::npos);

  // Grow the payload until the token is exactly at the limit: still parsed.
  const std::string header = b64_json({{"alg", "RS256"}});
  const std::string sig(342, 'A');  // 256 bytes of signature, base64url
  json p = claims();
  p["pad"] = "";
  std::string token;
  for (std::size_t n = 0;; ++n) {
    p["pad"] = std::string(n, 'x');
    token = header + "." + b64_json(p) + "." + sig;
    if (token.size() >= kMaxJwsSize) break;
  }
  if (token.size() == kMaxJwsSize) BOOST_TEST(parse_jws(token).ok());
  BOOST_TEST(code_of(parse_jws(token + "AAAA")) == "jwt_malformed");
}

// ---- alg allow-list ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(allow_list_is_exactly_the_rsa_ecdsa_and_ed25519_algs) {
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
    BOOST_TEST(is_allowed_alg(alg), alg);
  for (const char* alg : {"none", "None", "NONE", "HS256", "HS384", "HS512", "ES256K", "Ed25519", "Ed448", "EDDSA",
                          "eddsa", "rs256", "RS256 ", "", "RSA-OAEP", "RSA1_5", "dir"})
    BOOST_TEST(!is_allowed_alg(alg), alg);
}

// ---- verification ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_allowed_alg_verifies_with_its_key) {
  for (const auto& c : kAllowed) {
    BOOST_TEST_CONTEXT("alg " << c.alg) {
      const auto keys = keys_of({jwk_json(c.key(), "k1")});
      // ECDSA signatures are random: several rounds exercise r/s with and without a leading zero/high bit.
      for (int round = 0; round < 8; ++round) {
        auto jws = verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), c.key(), c.alg), keys);
        BOOST_REQUIRE_MESSAGE(jws.ok(), code_of(jws) + ": " + (jws.ok() ? "" : jws.error().detail));
        BOOST_TEST(jws->payload["sub"] == "kp_1");
        BOOST_TEST(jws->alg == c.alg);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(tampered_header_payload_or_signature_fails_for_every_alg) {
  for (const auto& c : kAllowed) {
    BOOST_TEST_CONTEXT("alg " << c.alg) {
      const auto keys = keys_of({jwk_json(c.key(), "k1")});
      const std::string jwt = sign_jwt({{"kid", "k1"}}, claims(), c.key(), c.alg);
      BOOST_REQUIRE(verify_jwt(jwt, keys).ok());

      const std::string header2 = b64_json({{"alg", c.alg}, {"kid", "k1"}, {"typ", "JWT"}});
      BOOST_TEST(code_of(verify_jwt(with_part(jwt, 0, header2), keys)) == "jwt_bad_signature");

      json other = claims();
      other["sub"] = "kp_attacker";
      BOOST_TEST(code_of(verify_jwt(with_part(jwt, 1, b64_json(other)), keys)) == "jwt_bad_signature");

      std::string sig = *base64url_decode(part_of(jwt, 2));
      sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x01);
      BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(sig)), keys)) == "jwt_bad_signature");
      sig = *base64url_decode(part_of(jwt, 2));
      sig.back() = static_cast<char>(sig.back() ^ 0x80);
      BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(sig)), keys)) == "jwt_bad_signature");
    }
  }
}

BOOST_AUTO_TEST_CASE(signature_by_another_key_under_the_same_kid_fails) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), rsa_key2(), "RS256"), keys)) ==
             "jwt_bad_signature");
  const auto ec_keys = keys_of({jwk_json(ec256_key(), "e1")});
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "e1"}}, claims(), make_ec_key("P-256"), "ES256"), ec_keys)) ==
             "jwt_bad_signature");
}

BOOST_AUTO_TEST_CASE(alg_none_is_rejected_with_or_without_a_signature) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  for (const char* alg : {"none", "None", "NONE"}) {
    BOOST_TEST_CONTEXT("alg " << alg) {
      BOOST_TEST(code_of(verify_jwt(unsigned_jwt({{"alg", alg}}, claims()), keys)) == "jwt_alg_not_allowed");
      BOOST_TEST(code_of(verify_jwt(unsigned_jwt({{"alg", alg}, {"kid", "k1"}}, claims()), keys)) ==
                 "jwt_alg_not_allowed");
      BOOST_TEST(code_of(verify_jwt(unsigned_jwt({{"alg", alg}, {"kid", "k1"}}, claims(), "c2ln"), keys)) ==
                 "jwt_alg_not_allowed");
    }
  }
  // Also refused when a caller bypasses verify_jwt and hands the key directly.
  auto jws = parse_jws(unsigned_jwt({{"alg", "none"}}, claims()));
  BOOST_REQUIRE(jws.ok());
  BOOST_TEST(code_of(verify_jws_signature(*jws, keys[0])) == "jwt_alg_not_allowed");
  BOOST_TEST(code_of(select_key(*jws, keys)) == "jwt_alg_not_allowed");
}

BOOST_AUTO_TEST_CASE(hs256_signed_with_the_rsa_public_key_as_secret_is_rejected) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  const std::string jwk_text = jwk_json(rsa_key(), "k1").dump();
  for (const std::string& secret : {public_pem(rsa_key()), public_der(rsa_key()), jwk_text}) {
    for (const char* alg : {"HS256", "HS384", "HS512"}) {
      BOOST_TEST_CONTEXT("alg " << alg) {
        BOOST_TEST(code_of(verify_jwt(sign_hs_jwt({{"kid", "k1"}}, claims(), secret, alg), keys)) ==
                   "jwt_alg_not_allowed");
        BOOST_TEST(code_of(verify_jwt(sign_hs_jwt({}, claims(), secret, alg), keys)) == "jwt_alg_not_allowed");
        auto jws = parse_jws(sign_hs_jwt({{"kid", "k1"}}, claims(), secret, alg));
        BOOST_REQUIRE(jws.ok());
        BOOST_TEST(code_of(verify_jws_signature(*jws, keys[0])) == "jwt_alg_not_allowed");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(unknown_kid_is_reported_so_the_caller_can_refetch_the_jwks) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1"), jwk_json(ec256_key(), "e1")});
  auto r = verify_jwt(sign_jwt({{"kid", "k2"}}, claims(), rsa_key(), "RS256"), keys);
  BOOST_TEST(code_of(r) == "jwt_unknown_kid");
  BOOST_TEST(r.error().detail.find("k2") != std::string::npos);
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS256"), {})) == "jwt_unknown_kid");
}

BOOST_AUTO_TEST_CASE(one_key_and_a_token_without_kid_is_accepted) {
  for (const auto& c : kAllowed) {
    BOOST_TEST_CONTEXT("alg " << c.alg) {
      const auto keys = keys_of({jwk_json(c.key(), "")});
      BOOST_TEST(verify_jwt(sign_jwt({}, claims(), c.key(), c.alg), keys).ok());
      const auto keys_with_kid = keys_of({jwk_json(c.key(), "k1")});
      BOOST_TEST(verify_jwt(sign_jwt({}, claims(), c.key(), c.alg), keys_with_kid).ok());
    }
  }
}

BOOST_AUTO_TEST_CASE(without_kid_the_only_fitting_key_is_chosen_and_several_are_ambiguous) {
  // RSA + EC: an RS256 token without kid fits only the RSA key, an ES256 token only the EC key.
  const auto mixed = keys_of({jwk_json(ec256_key(), "e1"), jwk_json(rsa_key(), "r1"), jwk_json(ec384_key(), "e2")});
  auto rs = parse_jws(sign_jwt({}, claims(), rsa_key(), "RS256"));
  BOOST_REQUIRE(rs.ok());
  auto chosen = select_key(*rs, mixed);
  BOOST_REQUIRE(chosen.ok());
  BOOST_TEST((*chosen)->kid == "r1");
  BOOST_TEST(verify_jwt(sign_jwt({}, claims(), ec384_key(), "ES384"), mixed).ok());
  BOOST_TEST(verify_jwt(sign_jwt({}, claims(), ec256_key(), "ES256"), mixed).ok());

  const auto two_rsa = keys_of({jwk_json(rsa_key(), "r1"), jwk_json(rsa_key2(), "r2")});
  BOOST_TEST(code_of(verify_jwt(sign_jwt({}, claims(), rsa_key(), "RS256"), two_rsa)) == "jwt_ambiguous_key");
  // A key pinned to another alg does not count as fitting.
  const auto pinned = keys_of({jwk_json(rsa_key(), "r1", "RS256"), jwk_json(rsa_key2(), "r2", "PS256")});
  BOOST_TEST(verify_jwt(sign_jwt({}, claims(), rsa_key(), "RS256"), pinned).ok());
  BOOST_TEST(verify_jwt(sign_jwt({}, claims(), rsa_key2(), "PS256"), pinned).ok());
  // No fitting key at all: unknown (a rotation may have added it).
  const auto ec_only = keys_of({jwk_json(ec256_key(), "e1")});
  BOOST_TEST(code_of(verify_jwt(sign_jwt({}, claims(), rsa_key(), "RS256"), ec_only)) == "jwt_unknown_kid");
}

BOOST_AUTO_TEST_CASE(rsa_key_used_with_an_es_alg_is_a_key_mismatch) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  // The attacker labels an RSA-signed token ES256 under the RSA key's kid.
  const std::string rsa_signed = sign_jwt({{"kid", "k1"}, {"alg", "ES256"}}, claims(), rsa_key(), "RS256");
  BOOST_TEST(code_of(verify_jwt(rsa_signed, keys)) == "jwt_key_mismatch");
  // And the other way: an EC key asked to verify RS256.
  const auto ec_keys = keys_of({jwk_json(ec256_key(), "e1")});
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "e1"}, {"alg", "RS256"}}, claims(), ec256_key(), "ES256"),
                                ec_keys)) == "jwt_key_mismatch");
  // A P-256 key cannot verify ES384.
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "e1"}}, claims(), ec384_key(), "ES384"), ec_keys)) ==
             "jwt_key_mismatch");
}

BOOST_AUTO_TEST_CASE(new_algs_refuse_a_key_of_another_curve_or_type) {
  const auto keys = keys_of({jwk_json(rsa_key(), "r1"), jwk_json(ec256_key(), "p256"), jwk_json(ec384_key(), "p384"),
                             jwk_json(ec521_key(), "p521"), jwk_json(ed25519_key(), "ed")});
  // The right key verifies; the same signature under the kid of any other key is a key mismatch.
  struct Case {
    const char* alg;
    const PKey& (*key)();
    const char* kid;
  };
  const Case cases[] = {{"ES512", ec521_key, "p521"}, {"EdDSA", ed25519_key, "ed"}, {"PS384", rsa_key, "r1"},
                        {"PS512", rsa_key, "r1"}};
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("alg " << c.alg) {
      BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", c.kid}}, claims(), c.key(), c.alg), keys)) == "ok");
      for (const char* other : {"r1", "p256", "p384", "p521", "ed"}) {
        if (std::string(other) == c.kid) continue;
        BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", other}}, claims(), c.key(), c.alg), keys)) ==
                   "jwt_key_mismatch", other);
      }
    }
  }
  // Signatures by the wrong curve, labelled with the new algs: a P-384 signature called ES512, a P-521 one
  // called ES384, an Ed448 one called EdDSA, an ECDSA P-521 one called EdDSA.
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "p384"}, {"alg", "ES512"}}, claims(), ec384_key(), "ES384"), keys)) ==
             "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "p521"}, {"alg", "ES512"}}, claims(), ec384_key(), "ES384"), keys)) ==
             "jwt_bad_signature");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "p521"}, {"alg", "ES384"}}, claims(), ec521_key(), "ES512"), keys)) ==
             "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "ed"}}, claims(), ed448_key(), "EdDSA"), keys)) == "jwt_bad_signature");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "ed"}, {"alg", "EdDSA"}}, claims(), ec521_key(), "ES512"), keys)) ==
             "jwt_bad_signature");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "p521"}, {"alg", "ES512"}}, claims(), ed25519_key(), "EdDSA"), keys)) ==
             "jwt_bad_signature");
  // Without a kid, each alg finds only its own key among them all.
  for (const auto& c : cases) {
    auto jws = parse_jws(sign_jwt({}, claims(), c.key(), c.alg));
    BOOST_REQUIRE(jws.ok());
    if (c.key == rsa_key) continue;  // PS* and RS* share the one RSA key
    auto chosen = select_key(*jws, keys);
    BOOST_REQUIRE(chosen.ok());
    BOOST_TEST((*chosen)->kid == c.kid);
  }
  // An Ed448 key never comes out of a JWKS; handed in directly, it still cannot verify EdDSA.
  auto ed448_token = parse_jws(sign_jwt({{"kid", "o2"}}, claims(), ed448_key(), "EdDSA"));
  BOOST_REQUIRE(ed448_token.ok());
  BOOST_TEST(code_of(verify_jws_signature(*ed448_token, Jwk{"o2", "OKP", "", "sig", "Ed448", ed448_key()})) ==
             "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jws_signature(*ed448_token, Jwk{"o2", "OKP", "", "sig", "Ed25519", ed448_key()})) ==
             "jwt_key_mismatch");
}

BOOST_AUTO_TEST_CASE(key_pinned_alg_must_match_the_token_alg) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1", "RS256")});
  BOOST_TEST(verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS256"), keys).ok());
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "PS256"), keys)) == "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jwt(sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS512"), keys)) == "jwt_key_mismatch");
}

BOOST_AUTO_TEST_CASE(mislabelled_hand_built_jwk_is_checked_against_the_real_key_type) {
  Jwk fake{"k1", "EC", "", "sig", "P-256", rsa_key()};
  auto jws = parse_jws(sign_jwt({{"kid", "k1"}}, claims(), ec256_key(), "ES256"));
  BOOST_REQUIRE(jws.ok());
  BOOST_TEST(code_of(verify_jws_signature(*jws, fake)) == "jwt_key_mismatch");
  Jwk empty{"k1", "EC", "", "sig", "P-256", nullptr};
  BOOST_TEST(code_of(verify_jws_signature(*jws, empty)) == "jwt_key_mismatch");
  Jwk p384_as_p256{"k1", "EC", "", "sig", "P-256", ec384_key()};
  BOOST_TEST(code_of(verify_jws_signature(*jws, p384_as_p256)) == "jwt_key_mismatch");

  auto es512 = parse_jws(sign_jwt({{"kid", "k1"}}, claims(), ec521_key(), "ES512"));
  BOOST_REQUIRE(es512.ok());
  BOOST_TEST(code_of(verify_jws_signature(*es512, Jwk{"k1", "EC", "", "sig", "P-521", ec521_key()})) == "ok");
  BOOST_TEST(code_of(verify_jws_signature(*es512, Jwk{"k1", "EC", "", "sig", "P-521", ec384_key()})) ==
             "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jws_signature(*es512, Jwk{"k1", "EC", "", "sig", "P-521", ed25519_key()})) ==
             "jwt_key_mismatch");
  auto eddsa = parse_jws(sign_jwt({{"kid", "k1"}}, claims(), ed25519_key(), "EdDSA"));
  BOOST_REQUIRE(eddsa.ok());
  BOOST_TEST(code_of(verify_jws_signature(*eddsa, Jwk{"k1", "OKP", "", "sig", "Ed25519", ed25519_key()})) == "ok");
  BOOST_TEST(code_of(verify_jws_signature(*eddsa, Jwk{"k1", "OKP", "", "sig", "Ed25519", ec256_key()})) ==
             "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jws_signature(*eddsa, Jwk{"k1", "OKP", "", "sig", "Ed25519", rsa_key()})) ==
             "jwt_key_mismatch");
  auto ps512 = parse_jws(sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "PS512"));
  BOOST_REQUIRE(ps512.ok());
  BOOST_TEST(code_of(verify_jws_signature(*ps512, Jwk{"k1", "RSA", "", "sig", "", ec521_key()})) == "jwt_key_mismatch");
  BOOST_TEST(code_of(verify_jws_signature(*ps512, Jwk{"k1", "RSA", "", "sig", "", ed25519_key()})) ==
             "jwt_key_mismatch");
}

BOOST_AUTO_TEST_CASE(es_signature_of_wrong_length_or_der_form_is_rejected) {
  const auto keys = keys_of({jwk_json(ec256_key(), "e1")});
  const std::string jwt = sign_jwt({{"kid", "e1"}}, claims(), ec256_key(), "ES256");
  const std::string raw = *base64url_decode(part_of(jwt, 2));
  BOOST_REQUIRE(raw.size() == 64u);
  for (const std::string& sig : {raw.substr(0, 63), raw + '\0', std::string(1, '\0') + raw, std::string(), raw + raw}) {
    BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(sig)), keys)) == "jwt_bad_signature");
  }
  // The same signature in DER form (what OpenSSL produces) is not a JWS signature.
  std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(der)), keys)) == "jwt_bad_signature");
  // All-zero r and s never verify.
  BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(std::string(64, '\0'))), keys)) ==
             "jwt_bad_signature");
}

BOOST_AUTO_TEST_CASE(es512_and_eddsa_signatures_of_wrong_length_are_rejected) {
  const auto keys = keys_of({jwk_json(ec521_key(), "p521"), jwk_json(ed25519_key(), "ed")});
  const std::string es = sign_jwt({{"kid", "p521"}}, claims(), ec521_key(), "ES512");
  const std::string es_raw = *base64url_decode(part_of(es, 2));
  BOOST_REQUIRE(es_raw.size() == 132u);  // 2 x 66 bytes: P-521 is not 2 x 64
  // 130 bytes is what 2 x (521 / 8) would give; a leading zero byte per half does not make it valid either.
  for (const std::string& sig : {es_raw.substr(0, 130), es_raw.substr(1, 65) + es_raw.substr(67, 65), es_raw + '\0',
                                 std::string(132, '\0'), std::string()})
    BOOST_TEST(code_of(verify_jwt(with_part(es, 2, base64url_encode(sig)), keys)) == "jwt_bad_signature");
  const std::string ed = sign_jwt({{"kid", "ed"}}, claims(), ed25519_key(), "EdDSA");
  const std::string ed_raw = *base64url_decode(part_of(ed, 2));
  BOOST_REQUIRE(ed_raw.size() == 64u);
  for (const std::string& sig : {ed_raw.substr(0, 63), ed_raw + '\0', std::string(64, '\0'), std::string()})
    BOOST_TEST(code_of(verify_jwt(with_part(ed, 2, base64url_encode(sig)), keys)) == "jwt_bad_signature");
  // S + L (the group order) is the same signature value but not canonical: RFC 8032 5.1.7 refuses it.
  static const unsigned char kOrder[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                           0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  std::string malleable = ed_raw;
  unsigned carry = 0;
  for (std::size_t i = 0; i < 32; ++i) {  // little-endian S in bytes 32..63
    const unsigned sum = static_cast<unsigned char>(malleable[32 + i]) + kOrder[i] + carry;
    malleable[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  BOOST_TEST(code_of(verify_jwt(with_part(ed, 2, base64url_encode(malleable)), keys)) == "jwt_bad_signature");
}

BOOST_AUTO_TEST_CASE(rsa_signature_of_wrong_length_is_rejected) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  const std::string jwt = sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS256");
  const std::string raw = *base64url_decode(part_of(jwt, 2));
  BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, ""), keys)) == "jwt_bad_signature");
  BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(raw.substr(1))), keys)) == "jwt_bad_signature");
  BOOST_TEST(code_of(verify_jwt(with_part(jwt, 2, base64url_encode(std::string(1, '\0') + raw)), keys)) ==
             "jwt_bad_signature");
}

BOOST_AUTO_TEST_CASE(ps_algs_require_salt_of_digest_length) {
  // A PSS signature with another salt length (or another digest) is not a valid JWS PS* signature.
  const auto keys = keys_of({jwk_json(rsa_key(), "k1")});
  struct Case {
    const char* alg;
    const EVP_MD* md;
    int digest_bytes;
  };
  for (const Case& c : {Case{"PS256", EVP_sha256(), 32}, Case{"PS384", EVP_sha384(), 48}, Case{"PS512", EVP_sha512(), 64}}) {
    BOOST_TEST_CONTEXT("alg " << c.alg) {
      const std::string input = b64_json({{"alg", c.alg}, {"kid", "k1"}}) + "." + b64_json(claims());
      BOOST_TEST(code_of(verify_jwt(input + "." + base64url_encode(pss_signature(input, c.md, c.digest_bytes)), keys)) ==
                 "ok");
      for (int salt : {20, c.digest_bytes == 32 ? 64 : 32})
        BOOST_TEST(code_of(verify_jwt(input + "." + base64url_encode(pss_signature(input, c.md, salt)), keys)) ==
                   "jwt_bad_signature");
      const EVP_MD* other = c.digest_bytes == 64 ? EVP_sha256() : EVP_sha512();
      BOOST_TEST(code_of(verify_jwt(input + "." + base64url_encode(pss_signature(input, other, c.digest_bytes)), keys)) ==
                 "jwt_bad_signature");
    }
  }
}

BOOST_AUTO_TEST_CASE(verify_leaves_no_openssl_errors_behind) {
  const auto keys = keys_of({jwk_json(rsa_key(), "k1"), jwk_json(ec256_key(), "e1")});
  ERR_clear_error();
  std::string rs = sign_jwt({{"kid", "k1"}}, claims(), rsa_key(), "RS256");
  rs[rs.size() - 5] = rs[rs.size() - 5] == 'A' ? 'B' : 'A';
  BOOST_TEST(!verify_jwt(rs, keys).ok());
  const std::string es = sign_jwt({{"kid", "e1"}}, claims(), ec256_key(), "ES256");
  BOOST_TEST(!verify_jwt(with_part(es, 2, base64url_encode(std::string(64, '\x7f'))), keys).ok());
  json bad = jwk_json(ec256_key(), "x");
  bad["y"] = bad["x"];
  BOOST_TEST(!parse_jwk(bad).ok());
  const auto more = keys_of({jwk_json(ec521_key(), "p521"), jwk_json(ed25519_key(), "ed")});
  const std::string ed = sign_jwt({{"kid", "ed"}}, claims(), ed25519_key(), "EdDSA");
  BOOST_TEST(!verify_jwt(with_part(ed, 2, base64url_encode(std::string(64, '\xff'))), more).ok());
  const std::string es512 = sign_jwt({{"kid", "p521"}}, claims(), ec521_key(), "ES512");
  BOOST_TEST(!verify_jwt(with_part(es512, 2, base64url_encode(std::string(132, '\xff'))), more).ok());
  BOOST_TEST(ERR_peek_error() == 0ul);
}

BOOST_AUTO_TEST_SUITE_END()

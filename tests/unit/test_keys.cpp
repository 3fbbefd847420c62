#include "test_keys.hpp"

#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "util/encoding.hpp"

namespace kinde::testing {
namespace {

using json = nlohmann::json;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("test_keys: " + what); }

PKey own(EVP_PKEY* raw, const char* what) {
  if (!raw) fail(what);
  return PKey(raw, EVP_PKEY_free);
}

std::string bn_bytes(const PKey& key, const char* param, int pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), param, &raw) != 1) fail(std::string("get ") + param);
  BnPtr bn(raw, BN_free);
  const int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(std::size_t(len), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), len) != len) fail("bn2binpad");
  return out;
}

std::string curve_of(const PKey& key) {
  char name[64] = {0};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key.get(), name, sizeof name, &len) != 1) fail("group name");
  const std::string group(name, len);
  if (group == "prime256v1" || group == "P-256") return "P-256";
  if (group == "secp384r1" || group == "P-384") return "P-384";
  if (group == "secp521r1" || group == "P-521") return "P-521";
  fail("unknown group " + group);
}

const EVP_MD* md_for(const std::string& alg) {
  if (alg == "EdDSA") return nullptr;  // one-shot scheme: no separate digest
  const std::string bits = alg.substr(2);
  if (bits == "256") return EVP_sha256();
  if (bits == "384") return EVP_sha384();
  if (bits == "512") return EVP_sha512();
  fail("no digest for " + alg);
}

std::string der_to_raw(const std::string& der, std::size_t half) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, long(der.size())),
                                                            ECDSA_SIG_free);
  if (!sig) fail("d2i_ECDSA_SIG");
  std::string raw(2 * half, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, int(half)) != int(half) ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + half, int(half)) != int(half))
    fail("ECDSA r/s to raw");
  return raw;
}

json with_alg(json header, const std::string& alg) {
  if (!header.is_object()) header = json::object();
  if (!header.contains("alg")) header["alg"] = alg;
  return header;
}

}  // namespace

PKey make_rsa_key(int bits) { return own(EVP_RSA_gen(static_cast<unsigned>(bits)), "RSA keygen"); }

PKey make_ec_key(const std::string& crv) {
  const char* group = crv == "P-256" ? "P-256" : crv == "P-384" ? "P-384" : crv == "P-521" ? "P-521" : nullptr;
  if (!group) fail("unknown curve " + crv);
  return own(EVP_EC_gen(group), "EC keygen");
}

PKey make_okp_key(const std::string& crv) {
  const char* type = crv == "Ed25519" ? "ED25519" : crv == "Ed448" ? "ED448" : nullptr;
  if (!type) fail("unknown OKP curve " + crv);
  return own(EVP_PKEY_Q_keygen(nullptr, nullptr, type), "OKP keygen");
}

const PKey& rsa_key() {
  static const PKey key = make_rsa_key();
  return key;
}
const PKey& rsa_key2() {
  static const PKey key = make_rsa_key();
  return key;
}
const PKey& ec256_key() {
  static const PKey key = make_ec_key("P-256");
  return key;
}
const PKey& ec384_key() {
  static const PKey key = make_ec_key("P-384");
  return key;
}
const PKey& ec521_key() {
  static const PKey key = make_ec_key("P-521");
  return key;
}
const PKey& ed25519_key() {
  static const PKey key = make_okp_key("Ed25519");
  return key;
}

json jwk_json(const PKey& key, const std::string& kid, const std::string& alg) {
  json jwk;
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA:
      jwk["kty"] = "RSA";
      jwk["n"] = base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_N, 0));
      jwk["e"] = base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_E, 0));
      break;
    case EVP_PKEY_EC: {
      const int size = (EVP_PKEY_get_bits(key.get()) + 7) / 8;
      jwk["kty"] = "EC";
      jwk["crv"] = curve_of(key);
      jwk["x"] = base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X, size));
      jwk["y"] = base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, size));
      break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448: {
      std::size_t len = 0;
      if (EVP_PKEY_get_raw_public_key(key.get(), nullptr, &len) != 1) fail("raw public key size");
      std::string x(len, '\0');
      if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(x.data()), &len) != 1)
        fail("raw public key");
      jwk["kty"] = "OKP";
      jwk["crv"] = EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448";
      jwk["x"] = base64url_encode(x);
      break;
    }
    default:
      fail("unsupported key type");
  }
  if (!kid.empty()) jwk["kid"] = kid;
  jwk["use"] = "sig";
  if (!alg.empty()) jwk["alg"] = alg;
  return jwk;
}

std::string jwks_json(const std::vector<json>& jwks) { return json{{"keys", jwks}}.dump(); }

std::string b64_json(const json& value) { return base64url_encode(value.dump()); }

std::string unsigned_jwt(const json& header, const json& payload, const std::string& signature_b64) {
  return b64_json(header) + "." + b64_json(payload) + "." + signature_b64;
}

std::string sign_jwt(json header, const json& payload, const PKey& key, const std::string& alg) {
  const std::string input = b64_json(with_alg(std::move(header), alg)) + "." + b64_json(payload);
  const EVP_MD* md = md_for(alg);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key.get()) != 1) fail("DigestSignInit " + alg);
  if (alg.rfind("PS", 0) == 0 &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    fail("PSS setup");
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) fail("DigestSign size");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) != 1)
    fail("DigestSign");
  sig.resize(len);
  if (alg.rfind("ES", 0) == 0) sig = der_to_raw(sig, std::size_t((EVP_PKEY_get_bits(key.get()) + 7) / 8));
  return input + "." + base64url_encode(sig);
}

std::string sign_hs_jwt(json header, const json& payload, const std::string& secret, const std::string& alg) {
  const std::string input = b64_json(with_alg(std::move(header), alg)) + "." + b64_json(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(md_for(alg), secret.data(), int(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
            input.size(), mac, &len))
    fail("HMAC");
  return input + "." + base64url_encode(std::string(reinterpret_cast<const char*>(mac), len));
}

std::string public_pem(const PKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) fail("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, std::size_t(len));
}

std::string public_der(const PKey& key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key.get(), &der);
  if (len <= 0) fail("i2d_PUBKEY");
  std::string out(reinterpret_cast<const char*>(der), std::size_t(len));
  OPENSSL_free(der);
  return out;
}

json id_token_payload(const std::string& issuer, const std::string& client_id, const std::string& nonce,
                      std::int64_t now) {
  json p = {{"iss", issuer},
            {"aud", json::array({client_id})},
            {"azp", client_id},
            {"sub", "kp_test_user"},
            {"exp", now + 3600},
            {"iat", now},
            {"auth_time", now},
            {"given_name", "Test"},
            {"family_name", "User"},
            {"email", "test.user@example.com"}};
  if (!nonce.empty()) p["nonce"] = nonce;
  return p;
}

json access_token_payload(const std::string& issuer, const std::string& client_id, const std::string& audience,
                          std::int64_t now) {
  json p = {{"iss", issuer},
            {"azp", client_id},
            {"sub", "kp_test_user"},
            {"exp", now + 86400},
            {"iat", now},
            {"jti", "test-jti"},
            {"scp", json::array({"openid", "profile", "email", "offline"})},
            {"permissions", json::array()},
            {"org_code", "org_test"},
            {"feature_flags", json::object()}};
  if (!audience.empty()) p["aud"] = json::array({audience});
  return p;
}

}  // namespace kinde::testing

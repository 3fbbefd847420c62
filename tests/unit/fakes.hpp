// Test doubles and helpers shared by the unit tests: a scripted OidcClient, a deterministic Random,
// session-store wrappers (recording, failing), Request builders (from variables or tests/data files)
// and TestApp, which wires an App from these parts with the project's real templates.
#pragma once
#include <cstdint>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "cgi/request.hpp"
#include "util/encoding.hpp"
#include "jose/jws.hpp"
#include "oidc/client.hpp"
#include "oidc/token_checks.hpp"
#include "session/record.hpp"
#include "session/sealed.hpp"
#include "session/session.hpp"
#include "util/clock.hpp"
#include "util/random.hpp"
#include "util/url.hpp"
#include "view/view.hpp"

namespace kinde::testing {

// True when needle occurs in haystack (the one substring check every test file uses).
// The signed-in record a session (or a kept refresh result) holds; throws when it holds none.
inline SignedIn record_of(const nlohmann::json& data) {
  auto rec = signed_in_from(data);
  if (!rec) throw std::runtime_error("record_of: not a signed-in record: " + data.dump());
  return *rec;
}
inline SignedIn record_of(const std::optional<Session>& s) {
  if (!s) throw std::runtime_error("record_of: no session");
  return record_of(s->data);
}
// Tokens with these values (the rest empty).
inline Tokens tokens_of(const std::string& id_token, const std::string& refresh_token = "") {
  Tokens t;
  t.id_token = id_token;
  t.refresh_token = refresh_token;
  return t;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Files under the project tree (tests may run from the repo root or from a build directory).

// Path of a project file ("templates", "tests/data/requests/get.env"), found by walking up from the
// working directory; throws when it is nowhere above.
inline std::string project_path(const std::string& rel) {
  std::string prefix;
  for (int up = 0; up < 5; ++up) {
    std::ifstream probe(prefix + "Makefile");
    if (probe) {
      std::ifstream marker(prefix + "tests/main.cpp");
      if (marker) return prefix + rel;
    }
    prefix += "../";
  }
  throw std::runtime_error("cannot find the project root above the working directory (for " + rel + ")");
}

// The whole content of a project file; throws when unreadable.
inline std::string read_project_file(const std::string& rel) {
  std::string path = project_path(rel);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// Requests.

// A Request built through the real build_request from CGI variables and a body.
inline Request make_request(const std::map<std::string, std::string>& vars, const std::string& body = "") {
  return build_request_from_vars(vars, body);
}

// What a browser or API client sends; turned into CGI variables by to_vars().
struct RequestSpec {
  std::string method = "GET";
  std::string path = "/";            // PATH_INFO (already decoded, as web servers pass it)
  std::string query;                 // raw QUERY_STRING
  std::string cookie;                // raw Cookie header ("" = none)
  std::string script_name;           // SCRIPT_NAME
  std::string request_uri;           // REQUEST_URI; "" = script_name + path (+ "?" query), as asked directly
  std::string authorization;         // raw Authorization header ("" = none)
  std::string accept;                // raw Accept header ("" = none)
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> extra;  // any other variables

  std::map<std::string, std::string> to_vars() const {
    std::map<std::string, std::string> v = {{"REQUEST_METHOD", method}, {"SCRIPT_NAME", script_name},
                                            {"PATH_INFO", path},        {"QUERY_STRING", query},
                                            {"SERVER_NAME", "app.example"}, {"HTTP_HOST", "app.example"},
                                            {"REMOTE_ADDR", "192.0.2.7"}, {"SERVER_PROTOCOL", "HTTP/1.1"}};
    v["REQUEST_URI"] = !request_uri.empty() ? request_uri : script_name + path + (query.empty() ? "" : "?" + query);
    if (!cookie.empty()) v["HTTP_COOKIE"] = cookie;
    if (!authorization.empty()) v["HTTP_AUTHORIZATION"] = authorization;
    if (!accept.empty()) v["HTTP_ACCEPT"] = accept;
    if (!content_type.empty()) v["CONTENT_TYPE"] = content_type;
    if (!body.empty()) v["CONTENT_LENGTH"] = std::to_string(body.size());
    for (const auto& [k, val] : extra) v[k] = val;
    return v;
  }
  Request build() const { return make_request(to_vars(), body); }
};

// A GET request for path with an optional raw query string and Cookie header.
inline Request get_request(const std::string& path, const std::string& query = "", const std::string& cookie = "") {
  RequestSpec s;
  s.path = path;
  s.query = query;
  s.cookie = cookie;
  return s.build();
}

// A canned environment from tests/data/requests/<name>.env, parsed by build_request_from_text.
inline Request load_request_file(const std::string& name) {
  return build_request_from_text(read_project_file("tests/data/requests/" + name + ".env"));
}

// ---------------------------------------------------------------------------------------------
// Randomness.

// Deterministic Random: call k (from 1) yields bytes whose first eight encode k big-endian and the
// rest are 0x5A, so every token differs and tests can list what was handed out.
class SequenceRandom : public Random {
 public:
  std::string bytes(std::size_t n) override {
    ++calls_;
    std::string out(n, '\x5A');
    for (std::size_t i = 0; i < 8 && i < n; ++i)
      out[i] = static_cast<char>((calls_ >> (8 * (7 - i))) & 0xff);
    issued_.push_back(base64url_encode(out));
    return out;
  }
  // Every value handed out so far, base64url-encoded, oldest first.
  const std::vector<std::string>& issued() const { return issued_; }
  // The token (32 bytes, base64url) that call number k produces.
  static std::string token_of_call(std::uint64_t k) {
    std::string out(32, '\x5A');
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((k >> (8 * (7 - i))) & 0xff);
    return base64url_encode(out);
  }
  std::uint64_t calls() const { return calls_; }

 private:
  std::uint64_t calls_ = 0;
  std::vector<std::string> issued_;
};

// ---------------------------------------------------------------------------------------------
// The provider.

// A scripted OidcClient: tokens are plain strings the test registers with their claims. Every call
// is recorded.
class FakeOidcClient : public OidcClient {
 public:
  FakeOidcClient() {
    meta.issuer = "https://idp.example";
    meta.authorization_endpoint = "https://idp.example/oauth2/auth";
    meta.token_endpoint = "https://idp.example/oauth2/token";
    meta.jwks_uri = "https://idp.example/.well-known/jwks";
    meta.end_session_endpoint = "https://idp.example/logout";
  }

  // --- script ---
  ProviderMetadata meta;
  std::optional<Error> metadata_error;          // set: metadata() fails with it
  std::optional<Error> exchange_error;          // set: exchange_code() fails with it
  TokenSet exchange_result;                     // what exchange_code() returns otherwise
  std::deque<Result<TokenSet>> refresh_results; // consumed in order; empty: error "token_endpoint_failed"
  std::map<std::string, nlohmann::json> id_tokens;      // valid ID tokens and their claims
  std::map<std::string, nlohmann::json> access_tokens;  // valid access tokens and their claims

  // --- record ---
  struct Exchange { std::string code, verifier, redirect_uri; };
  std::vector<Exchange> exchanges;
  std::vector<std::string> refreshes;           // refresh tokens presented
  std::vector<std::pair<std::string, std::string>> id_checks;  // (token, nonce)
  std::vector<std::string> revoked;             // refresh tokens passed to revoke_refresh_token()
  std::optional<Error> revoke_error;            // set: revoke_refresh_token() fails with it (after recording)
  int metadata_calls = 0;
  int warm_ups = 0;                             // warm_up() calls
  std::int64_t deadline = 0;                    // the deadline set now (set_deadline)
  std::vector<std::int64_t> refresh_deadlines;  // the deadline in force at each refresh()

  Result<ProviderMetadata> metadata() override {
    ++metadata_calls;
    if (metadata_error) return *metadata_error;
    return meta;
  }
  Result<TokenSet> exchange_code(const std::string& code, const std::string& verifier,
                                 const std::string& redirect_uri) override {
    exchanges.push_back({code, verifier, redirect_uri});
    if (exchange_error) return *exchange_error;
    return exchange_result;
  }
  void set_deadline(std::int64_t monotonic_ms) override { deadline = monotonic_ms; }
  void warm_up() override { ++warm_ups; }
  Result<TokenSet> refresh(const std::string& refresh_token) override {
    refreshes.push_back(refresh_token);
    refresh_deadlines.push_back(deadline);
    if (refresh_results.empty()) return make_error(kTokenEndpointFailed, "no scripted refresh result");
    Result<TokenSet> r = std::move(refresh_results.front());
    refresh_results.pop_front();
    return r;
  }
  Result<nlohmann::json> verify_id_token(const std::string& token, const std::string& nonce,
                                         std::int64_t) override {
    id_checks.emplace_back(token, nonce);
    auto it = id_tokens.find(token);
    if (it == id_tokens.end()) return make_error(kJwtBadSignature, "unknown test token");
    if (!nonce.empty() && it->second.value("nonce", std::string()) != nonce)
      return make_error(kTokenBadNonce, "nonce differs");
    return it->second;
  }
  Result<nlohmann::json> verify_access_token(const std::string& token, std::int64_t) override {
    auto it = access_tokens.find(token);
    if (it == access_tokens.end()) return make_error(kJwtBadSignature, "unknown test token");
    return it->second;
  }
  std::map<std::string, nlohmann::json> userinfos;  // UserInfo answers by access token
  std::vector<std::string> userinfo_calls;          // access tokens presented to userinfo()
  Result<nlohmann::json> userinfo(const std::string& access_token) override {
    userinfo_calls.push_back(access_token);
    if (meta.userinfo_endpoint.empty()) return make_error(kUserinfoUnsupported, "no userinfo_endpoint");
    auto it = userinfos.find(access_token);
    if (it == userinfos.end()) return make_error(kUserinfoFailed, "HTTP 401 (test)");
    return it->second;
  }
  Result<void> revoke_refresh_token(const std::string& refresh_token) override {
    revoked.push_back(refresh_token);
    if (meta.revocation_endpoint.empty()) return make_error(kRevocationUnsupported, "no revocation_endpoint");
    if (revoke_error) return *revoke_error;
    return Ok{};
  }
};

// ---------------------------------------------------------------------------------------------
// Session stores.

// Wraps a store and counts the calls that change it.
class RecordingStore : public SessionStore {
 public:
  explicit RecordingStore(std::unique_ptr<SessionStore> inner) : inner_(std::move(inner)) {}
  std::vector<Session> saved;          // every session passed to save(), in order
  std::vector<std::string> removed;    // every id passed to remove()
  int updates = 0;

  Result<std::optional<Session>> load(const std::string& id, std::int64_t now) override {
    return inner_->load(id, now);
  }
  Result<void> save(const Session& s) override {
    saved.push_back(s);
    return inner_->save(s);
  }
  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    ++updates;
    return inner_->update(id, now, fn);
  }
  Result<void> remove(const std::string& id) override {
    removed.push_back(id);
    return inner_->remove(id);
  }
  Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) override {
    return inner_->collect_expired(now, budget);
  }
  Result<void> keep_refresh_result(const std::string& id, const std::string& spent, const nlohmann::json& result,
                                   std::int64_t now) override {
    kept.push_back(spent);
    return inner_->keep_refresh_result(id, spent, result, now);
  }
  Result<std::optional<nlohmann::json>> refresh_result(const std::string& id, const std::string& spent,
                                                       std::int64_t now) override {
    return inner_->refresh_result(id, spent, now);
  }
  std::vector<std::string> kept;       // every spent refresh token passed to keep_refresh_result()

 private:
  std::unique_ptr<SessionStore> inner_;
};

// A store that fails with "session_store_unavailable" (a full disk, Redis down) while its switches
// are on, and otherwise passes calls to a memory store (so a test can show sessions survive).
class FailingStore : public SessionStore {
 public:
  bool fail_reads = true;    // load, collect_expired
  bool fail_writes = true;   // save, update, remove

  Result<std::optional<Session>> load(const std::string& id, std::int64_t now) override {
    if (fail_reads) return fail();
    return inner_->load(id, now);
  }
  Result<void> save(const Session& s) override {
    if (fail_writes) return fail();
    return inner_->save(s);
  }
  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    if (fail_writes) return fail();
    return inner_->update(id, now, fn);
  }
  Result<void> remove(const std::string& id) override {
    if (fail_writes) return fail();
    return inner_->remove(id);
  }
  Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) override {
    if (fail_reads) return fail();
    return inner_->collect_expired(now, budget);
  }
  Result<void> keep_refresh_result(const std::string& id, const std::string& spent, const nlohmann::json& result,
                                   std::int64_t now) override {
    if (fail_writes) return fail();
    return inner_->keep_refresh_result(id, spent, result, now);
  }
  Result<std::optional<nlohmann::json>> refresh_result(const std::string& id, const std::string& spent,
                                                       std::int64_t now) override {
    if (fail_reads) return fail();
    return inner_->refresh_result(id, spent, now);
  }

 private:
  static Error fail() { return make_error(kSessionStoreUnavailable, "disk full (test)"); }
  std::unique_ptr<SessionStore> inner_ = make_memory_session_store(SessionLimits{});
};

// ---------------------------------------------------------------------------------------------
// A whole App with fakes.

constexpr std::int64_t kNow = 1'700'000'000;
constexpr const char* kSignInFamily = "kinde_fcgi_auth_";  // sign-in cookie names (config.hpp kSignInCookieFamily)
const std::string kTestKeyMaterial(40, 'k');                 // the TestApp's session key material

// A valid configuration for tests (https issuer, Secure cookies).
inline Config test_config() {
  Config c;
  c.issuer = "https://idp.example";
  c.client_id = "client-123";
  c.client_secret = "secret-456";
  c.callback_url = "https://app.example/callback";
  c.cookie_secure = true;
  c.cookie_name = "kinde_fcgi_session";
  return c;
}

// The project's real templates, loaded once per test binary.
inline std::shared_ptr<const View> project_view() {
  static std::shared_ptr<const View> view = [] {
    auto v = View::load(project_path("templates"));
    if (!v) throw std::runtime_error("templates: " + v.error().detail);
    return *v;
  }();
  return view;
}

// Owns every part an App needs; the store is a RecordingStore over the memory store unless a test
// passes another. Build the App with app() after changing config or parts.
struct TestApp {
  Config config = test_config();
  FixedClock clock{kNow};
  SequenceRandom random;
  FakeOidcClient oidc;
  RecordingStore* recorder = nullptr;  // non-owning; null when a custom store was given
  std::unique_ptr<SessionStore> store;
  OpenSslRandom seal_random;           // the sealer's nonces, apart from `random` (whose calls tests count)
  std::unique_ptr<Sealer> sealer = make_sealer(kTestKeyMaterial, seal_random);
  std::unique_ptr<App> app_;

  explicit TestApp(std::unique_ptr<SessionStore> custom = nullptr) {
    if (custom) {
      store = std::move(custom);
    } else {
      auto rec = std::make_unique<RecordingStore>(make_memory_session_store(SessionLimits{}));
      recorder = rec.get();
      store = std::move(rec);
    }
  }

  App& app() {
    if (!app_) {
      AppParts p;
      p.config = config;
      p.clock = &clock;
      p.random = &random;
      p.sessions = store.get();
      p.sealer = sealer.get();
      p.view = project_view();
      p.oidc = &oidc;
      app_ = std::make_unique<App>(std::move(p));
    }
    return *app_;
  }
  Response handle(const Request& r) { return app().handle(r); }
  Response handle(const RequestSpec& s) { return app().handle(s.build()); }

  // Stores a signed-in session (user + tokens) and returns its id.
  std::string sign_in(const nlohmann::json& user, const Tokens& tokens = {},
                      const nlohmann::json& id_claims = nlohmann::json::object()) {
    SignedIn rec;
    rec.user = user;
    rec.tokens = tokens;
    rec.id_claims = id_claims;
    return save_record(rec);
  }
  // Stores a signed-in session holding this record and returns its id.
  std::string save_record(const SignedIn& rec) {
    Session s;
    s.id = random.token();
    s.created = s.last_used = clock.now();
    s.data = record_to_json(rec);
    auto saved = store->save(s);
    if (!saved) throw std::runtime_error("sign_in: " + saved.error().detail);
    return s.id;
  }
  // The stored session with this id (nullopt when absent); throws on a store error.
  std::optional<Session> stored(const std::string& id) {
    auto r = store->load(id, clock.now());
    if (!r) throw std::runtime_error("load: " + r.error().detail);
    return *r;
  }
  // The session cookie's name as the app decides it for a request at the site root.
  std::string session_cookie_name() { return app().session_cookie_name(make_request({{"REQUEST_METHOD", "GET"}})); }
  std::string session_cookie_header(const std::string& id) { return session_cookie_name() + "=" + id; }
  // What a sign-in cookie holds, opened with the app's own sealer: {s: state, n: nonce, v: verifier,
  // x: next, r: redirect_uri, t: created}; throws when it does not open.
  nlohmann::json pending_of(const std::string& set_cookie_line) {
    const std::string name = set_cookie_line.substr(0, set_cookie_line.find('='));
    auto eq = set_cookie_line.find('=');
    auto semi = set_cookie_line.find(';', eq);
    auto plain = sealer->open(set_cookie_line.substr(eq + 1, semi == std::string::npos ? semi : semi - eq - 1), name);
    if (!plain) throw std::runtime_error("sign-in cookie does not open: " + plain.error().detail);
    return nlohmann::json::parse(*plain);
  }
};

// ---------------------------------------------------------------------------------------------
// Response inspection.

// The Set-Cookie value whose name is `name` (first match), or "".
inline std::string set_cookie(const Response& r, const std::string& name) {
  for (const auto& c : r.cookies)
    if (c.rfind(name + "=", 0) == 0) return c;
  return {};
}

// The name part of a Set-Cookie line ("a=b; Path=/" -> "a").
inline std::string cookie_name_of(const std::string& set_cookie_line) {
  return set_cookie_line.substr(0, set_cookie_line.find('='));
}

// True when a Set-Cookie line clears its cookie.
inline bool clears(const std::string& set_cookie_line) {
  return set_cookie_line.find("Max-Age=0") != std::string::npos;
}

// True when a cookie name belongs to the sign-in family (any prefix).
inline bool is_signin_cookie_name(const std::string& name) {
  return name.find(kSignInFamily) != std::string::npos;
}

// The sign-in cookies a response sets (not the ones it clears), in order.
inline std::vector<std::string> signin_cookies_set(const Response& r) {
  std::vector<std::string> out;
  for (const auto& c : r.cookies)
    if (is_signin_cookie_name(cookie_name_of(c)) && !clears(c)) out.push_back(c);
  return out;
}

// The names of the sign-in cookies a response clears.
inline std::vector<std::string> signin_cookies_cleared(const Response& r) {
  std::vector<std::string> out;
  for (const auto& c : r.cookies)
    if (is_signin_cookie_name(cookie_name_of(c)) && clears(c)) out.push_back(cookie_name_of(c));
  return out;
}

// The value part of a Set-Cookie line ("a=b; Path=/" -> "b").
inline std::string cookie_value(const std::string& set_cookie_line) {
  auto eq = set_cookie_line.find('=');
  if (eq == std::string::npos) return {};
  auto semi = set_cookie_line.find(';', eq);
  return set_cookie_line.substr(eq + 1, semi == std::string::npos ? std::string::npos : semi - eq - 1);
}

// Text as mstch escapes it inside {{...}}: & < > " ' and also '/' (as &#x2F;).
inline std::string mstch_escaped(const std::string& text) {
  std::string out;
  for (char c : html_escape(text)) out += c == '/' ? std::string("&#x2F;") : std::string(1, c);  // no entity has '/'
  return out;
}

// The decoded query parameters of a URL ("https://x/y?a=1&b=2").
inline Params query_of(const std::string& url) {
  auto q = url.find('?');
  if (q == std::string::npos) return {};
  auto parsed = parse_query(url.substr(q + 1));
  if (!parsed) throw std::runtime_error("bad query in " + url);
  return *parsed;
}

}  // namespace kinde::testing

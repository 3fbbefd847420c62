// bench_driver: the in-process half of `make bench`, linked with libkinde.a.
//
//   bench_driver fill N               writes N signed-in-looking sessions with the store's own code
//                                     (seal + atomic write) into the configured store (file or Redis)
//   bench_driver handle [options]     builds the real Runtime (config, file store, templates,
//                                     provider client) and calls App::handle on one canned request
//   bench_driver verify TOKEN [opts]  calls the provider client's access-token check directly
//   bench_driver expire ID...         marks the access token of each session as expiring now, so
//                                     the next request with it refreshes at the provider for real
//
// Options: --cookie VALUE (session cookie), --bearer TOKEN, --path P (default "/"), --warm N
// (default 20, not counted), --count N (default 10), --expect TEXT (every body must contain it),
// --rss-at N,N,... (print the resident size after that many measured requests).
// The configuration comes from $KINDE_CONFIG, as for kinde.fcgi. Under valgrind's callgrind with
// --collect-atstart=no only the measured loop is counted (CALLGRIND_TOGGLE_COLLECT around it), so
// totals / count is the steady-state cost of one request, process start-up excluded.
// Prints one JSON object on stdout; exits 1 when a response is not 200 or lacks --expect.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/runtime.hpp"
#include "session/file_store.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"

namespace {

using namespace kinde;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "bench_driver: %s\n", message.c_str());
  std::exit(2);
}

Config load() {
  EnvGetter env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  const char* path = std::getenv("KINDE_CONFIG");
  if (!path) die("KINDE_CONFIG must name the app's config file");
  auto config = load_config(path, true, env);
  if (!config) die("config: " + config.error().detail);
  return *config;
}

// Resident set size of this process in kB (VmRSS of /proc/self/status), -1 when unreadable.
long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

std::int64_t unix_now() {
  SystemClock clock;
  return clock.now();
}

// A session shaped like the ones sign-in writes (user, tokens, claims), with filler tokens of
// realistic length, so a full directory holds files of the real size.
Session fake_session(Random& random, std::int64_t now) {
  Session s;
  s.id = random.token();
  s.created = now;
  s.last_used = now;
  std::string sub = "kp_" + random.token(16);
  s.data["user"] = {{"id", sub}, {"given_name", "Filler"}, {"family_name", "User"},
                    {"email", "filler@example.com"}, {"picture", nullptr}};
  s.data["tokens"] = {{"access_token", random.token(600)}, {"id_token", random.token(500)},
                      {"refresh_token", random.token(32)}, {"expires_at", now + 86400}};
  s.data["access_claims"] = {{"sub", sub}, {"permissions", {"read:items"}}, {"org_code", "org_filler"}};
  s.data["id_claims"] = {{"sub", sub}, {"iss", "http://127.0.0.1"}};
  return s;
}

// The configured store, as the app opens it; the file store without fsync when asked.
std::unique_ptr<SessionStore> open_store(const Config& config, Random& random, bool fsync) {
  auto key = resolve_session_key(config, random);
  if (!key) die("session key: " + key.error().detail);
  if (config.session_store != "file") {
    auto other = open_session_store(config, key->material, random);
    if (!other) die("session store: " + other.error().detail);
    return std::move(*other);
  }
  FileStoreOptions o;
  o.dir = config.session_dir;
  o.secret = key->material;
  o.limits = {config.idle_timeout, config.max_age};
  o.fsync = fsync;
  auto store = open_file_session_store(o, random);
  if (!store) die("session store: " + store.error().detail);
  return std::move(*store);
}

int fill(long n) {
  Config config = load();
  OpenSslRandom random;
  // A fixture, not user data: no fsync per file (100,000 fsyncs would take minutes).
  auto store = open_store(config, random, false);
  std::int64_t now = unix_now();
  std::string last_id;
  for (long i = 0; i < n; ++i) {
    Session s = fake_session(random, now);
    auto saved = store->save(s);
    if (!saved) die("save: " + saved.error().detail);
    last_id = s.id;
  }
  // The last id: a cookie value for `handle --cookie` (its page shows "Filler User").
  std::printf("{\"filled\":%ld,\"dir\":%s,\"last_id\":\"%s\"}\n", n, nlohmann::json(config.session_dir).dump().c_str(),
              last_id.c_str());
  return 0;
}

// expire ID...: each session's access token marked as expiring now, so its next request refreshes.
int expire(int argc, char** argv) {
  Config config = load();
  OpenSslRandom random;
  auto store = open_store(config, random, true);
  std::int64_t now = unix_now();
  for (int i = 2; i < argc; ++i) {
    auto loaded = store->load(argv[i], now);
    if (!loaded || !*loaded) die(std::string("no session ") + argv[i]);
    Session s = **loaded;
    if (!s.data.contains("tokens") || !s.data["tokens"].contains("refresh_token")) die("session without a refresh token");
    s.data["tokens"]["expires_at"] = now;
    if (auto saved = store->save(s); !saved) die("save: " + saved.error().detail);
  }
  std::printf("{\"expired\":%d}\n", argc - 2);
  return 0;
}

struct Options {
  std::string cookie, bearer, path = "/", expect;
  long warm = 20, count = 10;
  std::vector<long> rss_at;
};

Options parse(int argc, char** argv, int first) {
  Options o;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--cookie") o.cookie = value();
    else if (a == "--bearer") o.bearer = value();
    else if (a == "--path") o.path = value();
    else if (a == "--expect") o.expect = value();
    else if (a == "--warm") o.warm = std::atol(value().c_str());
    else if (a == "--count") o.count = std::atol(value().c_str());
    else if (a == "--rss-at") {
      std::stringstream ss(value());
      std::string item;
      while (std::getline(ss, item, ',')) o.rss_at.push_back(std::atol(item.c_str()));
    } else {
      die("unknown option " + a);
    }
  }
  if (o.warm < 0 || o.count < 1) die("--warm must be >= 0 and --count >= 1");
  return o;
}

std::unique_ptr<Runtime> runtime() {
  auto rt = build_runtime(load());
  if (!rt) die("runtime: " + rt.error().detail);
  return std::move(*rt);
}

int handle(const Options& o) {
  auto rt = runtime();
  std::map<std::string, std::string> vars = {
      {"GATEWAY_INTERFACE", "CGI/1.1"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_METHOD", "GET"},
      {"SERVER_NAME", "127.0.0.1"},     {"SERVER_PORT", "80"},           {"REMOTE_ADDR", "127.0.0.1"},
      {"HTTP_HOST", "127.0.0.1"},       {"SCRIPT_NAME", ""},             {"PATH_INFO", o.path},
      {"QUERY_STRING", ""},             {"REQUEST_URI", o.path},         {"FCGI_ROLE", "RESPONDER"}};
  // The cookie's name as the app decides it (a __Host- prefix when Secure at "/").
  if (!o.cookie.empty()) vars["HTTP_COOKIE"] = rt->app->session_cookie_name(build_request_from_vars(vars, "")) + "=" + o.cookie;
  if (!o.bearer.empty()) vars["HTTP_AUTHORIZATION"] = "Bearer " + o.bearer;
  EnvLookup env = [&vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  BodyReader body = [](char*, std::size_t) -> std::size_t { return 0; };

  // Each request is built afresh, as main() does, so request parsing is part of the cost.
  auto one = [&]() -> std::size_t {
    Request req = build_request(env, body);
    Response r = rt->app->handle(req);
    if (r.status != 200) die("status " + std::to_string(r.status) + " for " + o.path + ": " + r.body.substr(0, 300));
    if (!o.expect.empty() && r.body.find(o.expect) == std::string::npos)
      die("body for " + o.path + " lacks " + o.expect + ": " + r.body.substr(0, 300));
    return serialize_cgi(r, false).size();
  };

  for (long i = 0; i < o.warm; ++i) one();
  nlohmann::json rss = nlohmann::json::object();
  std::size_t bytes = 0;
  std::size_t next_rss = 0;
  CALLGRIND_TOGGLE_COLLECT;
  for (long i = 1; i <= o.count; ++i) {
    bytes = one();
    if (next_rss < o.rss_at.size() && i == o.rss_at[next_rss]) {
      rss[std::to_string(i)] = rss_kb();
      ++next_rss;
    }
  }
  CALLGRIND_TOGGLE_COLLECT;
  nlohmann::json out = {{"path", o.path}, {"count", o.count}, {"response_bytes", bytes}, {"rss_kb", rss}};
  std::cout << out.dump() << "\n";
  return 0;
}

int verify(const std::string& token, const Options& o) {
  auto rt = runtime();
  std::int64_t now = unix_now();
  auto once = [&]() {
    auto claims = rt->oidc->verify_access_token(token, now);
    if (!claims) die("token rejected: " + claims.error().code + ": " + claims.error().detail);
  };
  for (long i = 0; i < o.warm; ++i) once();
  CALLGRIND_TOGGLE_COLLECT;
  for (long i = 0; i < o.count; ++i) once();
  CALLGRIND_TOGGLE_COLLECT;
  std::cout << nlohmann::json({{"verified", o.count}}).dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "fill" && argc == 3) return fill(std::atol(argv[2]));
  if (mode == "handle") return handle(parse(argc, argv, 2));
  if (mode == "verify" && argc >= 3) return verify(argv[2], parse(argc, argv, 3));
  if (mode == "expire" && argc >= 3) return expire(argc, argv);
  std::fprintf(stderr, "usage: bench_driver fill N | handle [--cookie C] [--bearer T] [--path P] [--warm N] "
                       "[--count N] [--expect TEXT] [--rss-at N,...] | verify TOKEN [--warm N] [--count N] | expire ID...\n");
  return 2;
}

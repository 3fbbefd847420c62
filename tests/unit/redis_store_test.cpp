// The Redis session store against real redis-server processes started here: URL forms, secrets,
// TTLs, expiry, wrong secret and tampering, the cross-machine lock (forked writers), Redis
// stopped, paused and restarted, passwords. Also defines the redis-server fixture the session
// contract suite uses (kinde_test::shared_redis_url).
#include <boost/test/unit_test.hpp>

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "http/transport.hpp"
#include "oidc/provider.hpp"
#include "session/redis_store.hpp"
#include "test_keys.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

using namespace kinde;

namespace kinde_test {

// Finds redis-server on PATH; throws (failing the test) when it is missing.
std::string redis_server_binary() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/sbin:/usr/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  throw std::runtime_error("redis-server is not installed (apt-get install redis-server): the Redis session store tests need it");
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// A raw hiredis connection for looking at what the store wrote.
class RawRedis {
 public:
  explicit RawRedis(int port, const std::string& password = "") {
    timeval tv{1, 0};
    c_.reset(redisConnectWithTimeout("127.0.0.1", port, tv));
    if (!c_ || c_->err) throw std::runtime_error("raw Redis connection failed");
    if (!password.empty()) cmd({"AUTH", password});
  }
  // The reply as text: strings as-is, integers in decimal, nil as "(nil)", errors as "ERR...".
  std::string cmd(const std::vector<std::string>& argv) {
    std::vector<const char*> p;
    std::vector<std::size_t> l;
    for (const auto& a : argv) {
      p.push_back(a.data());
      l.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_.get(), static_cast<int>(argv.size()), p.data(), l.data()));
    if (!r) throw std::runtime_error("raw Redis command failed");
    std::string out;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) out.assign(r->str, r->len);
    else if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
    else if (r->type == REDIS_REPLY_NIL) out = "(nil)";
    else out = "(array)";
    freeReplyObject(r);
    return out;
  }

 private:
  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> c_;
};

// One redis-server child process on a free loopback port (and a unix socket), no persistence.
// Dies with the test process (PR_SET_PDEATHSIG), is stopped by the destructor otherwise.
class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char tmpl[] = "/tmp/kinde-redis-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (start_process()) return;
    }
    throw std::runtime_error("redis-server did not start; its log: " + dir_ + "/redis.log");
  }
  ~RedisServer() {
    // A forked test child that exits normally runs static destructors too: only the owner stops.
    if (::getpid() != owner_) return;
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string socket_path() const { return dir_ + "/redis.sock"; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  void stop() {
    if (pid_ <= 0) return;
    if (paused_) ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    paused_ = false;
  }
  // Starts again on the same port.
  void restart() {
    stop();
    for (int attempt = 0; attempt < 20; ++attempt)
      if (start_process()) return;
    throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_));
  }
  void pause() {
    ::kill(pid_, SIGSTOP);
    paused_ = true;
  }
  void resume() {
    ::kill(pid_, SIGCONT);
    paused_ = false;
  }

 private:
  bool start_process() {
    static const std::string binary = redis_server_binary();
    std::vector<std::string> args = {binary, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--daemonize", "no",
                                     "--unixsocket", socket_path(), "--unixsocketperm", "700",
                                     "--loglevel", "warning", "--dir", dir_, "--logfile", dir_ + "/redis.log"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    // Ready when it answers; gone when the port was taken meanwhile.
    for (int i = 0; i < 500; ++i) {
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      timeval tv{0, 200000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      bool up = c && !c->err;
      if (c) redisFree(c);
      if (up) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  std::vector<std::string> extra_;
  pid_t owner_ = ::getpid();
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

RedisServer& shared_redis() {
  static RedisServer server;
  return server;
}

// Used by the session contract suite.
std::string shared_redis_url() { return shared_redis().url(); }

}  // namespace kinde_test

using kinde_test::RawRedis;
using kinde_test::RedisServer;

namespace {

constexpr std::int64_t kT0 = 1'700'000'000;
const std::string kSecretA(40, 'a');
const std::string kSecretB(40, 'b');

// Each test gets its own key prefix on the shared server.
std::string fresh_prefix(Random& r) { return "t" + r.token(6) + ":"; }

RedisStoreOptions options(const std::string& url, const std::string& prefix, std::int64_t idle = 3600,
                          std::int64_t max_age = 86400) {
  RedisStoreOptions o;
  o.url = url;
  o.secret = kSecretA;
  o.key_prefix = prefix;
  o.limits.idle_timeout = idle;
  o.limits.max_age = max_age;
  return o;
}

std::unique_ptr<SessionStore> open_or_throw(const RedisStoreOptions& o, Random& r) {
  auto s = open_redis_session_store(o, r);
  if (!s) throw std::runtime_error(s.error().code + ": " + s.error().detail);
  return std::move(s).value();
}

Session make_session(Random& r, std::int64_t created = kT0, std::int64_t last_used = kT0) {
  Session s;
  s.id = r.token(32);
  s.created = created;
  s.last_used = last_used;
  s.data = {{"refresh_token", "rt-plaintext-marker"}, {"n", 0}};
  return s;
}

// Silences the store's warnings (ignored records, unreachable Redis) for the test's duration.
struct QuietLog {
  QuietLog() { set_log_sink([](std::string_view) {}); }
  ~QuietLog() { set_log_sink(nullptr); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_store)

BOOST_AUTO_TEST_CASE(tcp_urls_parse_host_port_password_and_db) {
  auto a = parse_redis_url("redis://:p%40ss@10.0.0.5:6380/3");
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->host == "10.0.0.5");
  BOOST_TEST(a->port == 6380);
  BOOST_TEST(a->password == "p@ss");
  BOOST_TEST(a->user == "");
  BOOST_TEST(a->db == 3);
  auto b = parse_redis_url("redis://redis.internal");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->host == "redis.internal");
  BOOST_TEST(b->port == 6379);
  BOOST_TEST(b->db == 0);
  BOOST_TEST(b->password == "");
  auto c = parse_redis_url("redis://app:secret@[::1]:7000");
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(c->host == "::1");
  BOOST_TEST(c->port == 7000);
  BOOST_TEST(c->user == "app");
  BOOST_TEST(c->password == "secret");
}

BOOST_AUTO_TEST_CASE(unix_urls_parse_path_db_and_password) {
  auto a = parse_redis_url("unix:/run/redis/redis.sock?db=2&password=a%26b");
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->unix_path == "/run/redis/redis.sock");
  BOOST_TEST(a->host == "");
  BOOST_TEST(a->db == 2);
  BOOST_TEST(a->password == "a&b");
  auto b = parse_redis_url("unix:///var/run/r.sock");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->unix_path == "/var/run/r.sock");
  BOOST_TEST(b->db == 0);
}

BOOST_AUTO_TEST_CASE(malformed_urls_are_refused_with_the_reason) {
  for (const char* bad : {"redis://", "redis://host:0", "redis://host:99999", "redis://host:port", "redis://host/x",
                          "unix:relative.sock", "unix:/s.sock?db=x", "unix:/s.sock?color=red", "redis://:%zz@h",
                          "memcached://h"}) {
    auto r = parse_redis_url(bad);
    BOOST_TEST_CONTEXT(bad) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.error().code == kSessionStoreBadUrl);
    }
  }
}

BOOST_AUTO_TEST_CASE(rediss_is_refused_because_this_hiredis_has_no_tls) {
  auto r = parse_redis_url("rediss://:pw@cache.example:6380");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnsupported);
  BOOST_TEST(r.error().detail.find("rediss:// needs hiredis with TLS; use a local stunnel or a unix socket") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(redacted_urls_hide_the_password_only) {
  BOOST_TEST(redact_redis_url("redis://:hunter2@h:1/2") == "redis://:***@h:1/2");
  BOOST_TEST(redact_redis_url("redis://app:hunter2@h:1") == "redis://app:***@h:1");
  BOOST_TEST(redact_redis_url("redis://h:1/0") == "redis://h:1/0");
  BOOST_TEST(redact_redis_url("unix:/s.sock?db=1&password=hunter2&user=u") == "unix:/s.sock?db=1&password=***&user=u");
}

BOOST_AUTO_TEST_CASE(open_without_a_shared_secret_is_refused) {
  OpenSslRandom rnd;
  auto o = options(kinde_test::shared_redis_url(), fresh_prefix(rnd));
  o.secret.clear();
  auto r = open_redis_session_store(o, rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionSecretRequired);
  BOOST_TEST(r.error().detail.find("KINDE_SESSION_SECRET") != std::string::npos);
  BOOST_TEST(r.error().detail.find("same on every server") != std::string::npos);
  o.secret = std::string(31, 'x');
  auto w = open_redis_session_store(o, rnd);
  BOOST_REQUIRE(!w.ok());
  BOOST_TEST(w.error().code == kSessionSecretWeak);
}

BOOST_AUTO_TEST_CASE(record_is_encrypted_under_the_hashed_id_with_ttl_of_the_idle_timeout) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 600, 86400), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string key = prefix + "s:" + session_id_hash(s.id);
  BOOST_TEST(redis_session_key(prefix, s.id) == key);
  const std::string value = raw.cmd({"GET", key});
  BOOST_TEST(value.substr(0, 3) == "KSR");
  BOOST_TEST(value.find("rt-plaintext-marker") == std::string::npos);
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "s:" + s.id}) == "0");
  const long pttl = std::stol(raw.cmd({"PTTL", key}));
  BOOST_TEST(pttl > 590000);
  BOOST_TEST(pttl <= 600000);
}

BOOST_AUTO_TEST_CASE(ttl_never_passes_the_absolute_lifetime) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 600, 3000), rnd);
  // Used just now, but created 2900 s ago: 100 s of life left, less than the idle timeout.
  Session s = make_session(rnd, kT0 - 2900, kT0);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const long pttl = std::stol(raw.cmd({"PTTL", redis_session_key(prefix, s.id)}));
  BOOST_TEST(pttl > 90000);
  BOOST_TEST(pttl <= 100000);
}

BOOST_AUTO_TEST_CASE(update_renews_the_ttl_from_its_now) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 600, 86400), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  // 500 s later, without touching last_used: 100 s are left.
  auto u = store->update(s.id, kT0 + 500, [](std::optional<Session>& cur) {
    cur->data["n"] = 1;
    return true;
  });
  BOOST_REQUIRE(u.ok() && u->has_value());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string key = redis_session_key(prefix, s.id);
  long pttl = std::stol(raw.cmd({"PTTL", key}));
  BOOST_TEST(pttl > 90000);
  BOOST_TEST(pttl <= 100000);
  // Touched: the full idle timeout again.
  BOOST_REQUIRE(store->update(s.id, kT0 + 550, [](std::optional<Session>& cur) {
    cur->last_used = kT0 + 550;
    return true;
  }).ok());
  pttl = std::stol(raw.cmd({"PTTL", key}));
  BOOST_TEST(pttl > 590000);
  BOOST_TEST(pttl <= 600000);
}

BOOST_AUTO_TEST_CASE(session_past_its_max_age_is_not_returned_and_is_deleted) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 600, 3000), rnd);
  Session s = make_session(rnd, kT0, kT0 + 2990);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string key = redis_session_key(prefix, s.id);
  // Redis still has it (its TTL is 10 s), but our clock says it is over.
  BOOST_TEST(store->load(s.id, kT0 + 3000)->has_value());
  auto r = store->load(s.id, kT0 + 3001);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
  BOOST_TEST(raw.cmd({"EXISTS", key}) == "0");
}

BOOST_AUTO_TEST_CASE(saving_a_session_already_past_its_lifetime_stores_nothing) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 600, 3000), rnd);
  Session s = make_session(rnd, kT0, kT0 + 3001);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  BOOST_TEST(raw.cmd({"EXISTS", redis_session_key(prefix, s.id)}) == "0");
}

BOOST_AUTO_TEST_CASE(a_server_with_another_secret_sees_no_session) {
  QuietLog quiet;
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto a = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  auto ob = options(kinde_test::shared_redis_url(), prefix);
  ob.secret = kSecretB;
  auto b = open_or_throw(ob, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(a->save(s).ok());
  auto r = b->load(s.id, kT0);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
  // And the same secret on a second "machine" does see it.
  auto c = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  auto rc = c->load(s.id, kT0);
  BOOST_REQUIRE(rc.ok() && rc->has_value());
  BOOST_TEST((*rc)->data == s.data);
}

BOOST_AUTO_TEST_CASE(tampered_or_moved_records_read_as_absent) {
  QuietLog quiet;
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  RawRedis raw(kinde_test::shared_redis().port());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  const std::string key = redis_session_key(prefix, s.id);
  std::string value = raw.cmd({"GET", key});
  BOOST_REQUIRE(value.size() > 40);
  // One flipped bit in the ciphertext.
  std::string flipped = value;
  flipped[35] = static_cast<char>(flipped[35] ^ 0x01);
  raw.cmd({"SET", key, flipped});
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
  // A later last_used written into the header (to outlive the idle timeout).
  std::string header = value;
  header[19] = static_cast<char>(header[19] + 1);
  raw.cmd({"SET", key, header});
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
  // A valid record copied under another session's key.
  Session other = make_session(rnd);
  raw.cmd({"SET", redis_session_key(prefix, other.id), value});
  BOOST_TEST(!store->load(other.id, kT0)->has_value());
  // Garbage.
  raw.cmd({"SET", key, "not a record"});
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
  // The original bytes still work: the checks above failed for the right reasons.
  raw.cmd({"SET", key, value});
  BOOST_TEST(store->load(s.id, kT0)->has_value());
}

// load() reuses what a record opened to while Redis returns the same bytes; every change must still show.
BOOST_AUTO_TEST_CASE(a_session_loaded_before_still_follows_every_change_in_redis) {
  QuietLog quiet;
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 3600), rnd);
  auto other = open_or_throw(options(kinde_test::shared_redis_url(), prefix, 3600), rnd);
  RawRedis raw(kinde_test::shared_redis().port());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  const std::string key = redis_session_key(prefix, s.id);
  const std::string value = raw.cmd({"GET", key});
  BOOST_REQUIRE(store->load(s.id, kT0)->has_value());
  BOOST_REQUIRE(store->load(s.id, kT0)->has_value());
  // Tampered after it was read: absent, then the original bytes open again.
  std::string flipped = value;
  flipped[35] = static_cast<char>(flipped[35] ^ 0x01);
  raw.cmd({"SET", key, flipped});
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
  raw.cmd({"SET", key, value});
  BOOST_TEST(store->load(s.id, kT0)->has_value());
  // Changed by another server: the new data.
  auto changed = other->update(s.id, kT0 + 10, [](std::optional<Session>& cur) {
    cur->data["n"] = 7;
    cur->last_used = kT0 + 10;
    return true;
  });
  BOOST_REQUIRE(changed.ok() && changed->has_value());
  auto seen = store->load(s.id, kT0 + 10);
  BOOST_REQUIRE(seen.ok() && seen->has_value());
  BOOST_TEST((*seen)->data["n"] == 7);
  BOOST_TEST((*seen)->last_used == kT0 + 10);
  // The same bytes past the idle timeout: no session (the clock check runs on a reused answer too).
  BOOST_TEST(!store->load(s.id, kT0 + 10 + 3601)->has_value());
  // Signed out elsewhere: gone here at once.
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_REQUIRE(store->load(s.id, kT0)->has_value());
  BOOST_REQUIRE(other->remove(s.id).ok());
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE(update_waits_for_a_held_lock_then_gives_up_with_session_locked) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto o = options(kinde_test::shared_redis_url(), prefix);
  int slept = 0, naps = 0;
  o.lock_wait_ms = 300;
  o.sleep = [&](int ms) {
    slept += ms;
    ++naps;
  };
  auto store = open_or_throw(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string lock = prefix + "l:" + session_id_hash(s.id);
  raw.cmd({"SET", lock, "another-machine", "PX", "10000"});
  bool called = false;
  auto r = store->update(s.id, kT0, [&](std::optional<Session>&) {
    called = true;
    return true;
  });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST(r.error().detail == "session is locked by another request");
  BOOST_TEST(!called);
  BOOST_TEST(slept == 300);
  BOOST_TEST(naps > 3);
  // Not ours, so not released by us.
  BOOST_TEST(raw.cmd({"GET", lock}) == "another-machine");
  const long pttl = std::stol(raw.cmd({"PTTL", lock}));
  BOOST_TEST(pttl > 5000);
  // remove() respects it too.
  auto rm = store->remove(s.id);
  BOOST_TEST(!rm.ok());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE(a_waiting_update_proceeds_when_the_holder_releases_and_reads_its_result) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto o = options(kinde_test::shared_redis_url(), prefix);
  auto store_b = open_or_throw(o, rnd);  // the other machine
  Session s = make_session(rnd);
  BOOST_REQUIRE(store_b->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string lock = prefix + "l:" + session_id_hash(s.id);
  raw.cmd({"SET", lock, "machine-b", "PX", "10000"});
  int naps = 0;
  o.sleep = [&](int) {
    // While we wait, machine B finishes its refresh: writes the new token and releases.
    if (++naps == 3) {
      Session rotated = s;
      rotated.data["refresh_token"] = "rotated-by-b";
      BOOST_REQUIRE(store_b->save(rotated).ok());
      raw.cmd({"DEL", lock});
    }
  };
  auto store_a = open_or_throw(o, rnd);
  std::string seen;
  auto r = store_a->update(s.id, kT0, [&](std::optional<Session>& cur) {
    seen = cur->data["refresh_token"];
    return false;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(naps == 3);
  BOOST_TEST(seen == "rotated-by-b");
  BOOST_TEST(raw.cmd({"EXISTS", lock}) == "0");
}

BOOST_AUTO_TEST_CASE(lock_is_released_when_fn_throws) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto o = options(kinde_test::shared_redis_url(), prefix);
  o.lock_wait_ms = 0;
  auto store = open_or_throw(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_CHECK_THROW(store->update(s.id, kT0, [](std::optional<Session>&) -> bool { throw std::runtime_error("boom"); }),
                    std::runtime_error);
  RawRedis raw(kinde_test::shared_redis().port());
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "l:" + session_id_hash(s.id)}) == "0");
  auto r = store->update(s.id, kT0, [](std::optional<Session>& cur) {
    cur->data["n"] = 7;
    return true;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((*store->load(s.id, kT0))->data["n"] == 7);
}

BOOST_AUTO_TEST_CASE(an_update_does_not_bring_back_a_session_that_ended_meanwhile) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  auto r = store->update(s.id, kT0, [&](std::optional<Session>& cur) {
    raw.cmd({"DEL", redis_session_key(prefix, s.id)});  // its TTL ran out during a slow refresh
    cur->data["n"] = 1;
    return true;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
  BOOST_TEST(raw.cmd({"EXISTS", redis_session_key(prefix, s.id)}) == "0");
}

BOOST_AUTO_TEST_CASE(an_update_whose_lock_lapsed_writes_nothing) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string lock = prefix + "l:" + session_id_hash(s.id);
  auto r = store->update(s.id, kT0, [&](std::optional<Session>& cur) {
    raw.cmd({"SET", lock, "next-holder", "PX", "10000"});  // ours lapsed; someone else has it now
    cur->data["n"] = 99;
    return true;
  });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST((*store->load(s.id, kT0))->data["n"] == 0);
  BOOST_TEST(raw.cmd({"GET", lock}) == "next-holder");
}

BOOST_AUTO_TEST_CASE(two_machines_racing_updates_lose_no_increment) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  const auto o = options(kinde_test::shared_redis_url(), prefix);
  Session s = make_session(rnd);
  {
    auto store = open_or_throw(o, rnd);
    BOOST_REQUIRE(store->save(s).ok());
  }
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      // Each child is a machine of its own: its own store object and connection.
      int failures = 0;
      try {
        OpenSslRandom child_rnd;
        auto store = open_or_throw(o, child_rnd);
        for (int i = 0; i < 50; ++i) {
          auto r = store->update(s.id, kT0, [](std::optional<Session>& cur) {
            if (!cur) return false;
            const int n = cur->data["n"];
            cur->data["n"] = n + 1;
            return true;
          });
          if (!r || !r->has_value()) ++failures;
        }
      } catch (...) {
        ::_exit(100);
      }
      ::_exit(failures);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int st = 0;
    BOOST_REQUIRE(::waitpid(pid, &st, 0) == pid);
    BOOST_TEST(WIFEXITED(st));
    BOOST_TEST(WEXITSTATUS(st) == 0);
  }
  auto store = open_or_throw(o, rnd);
  auto r = store->load(s.id, kT0);
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST((*r)->data["n"] == 100);
}

BOOST_AUTO_TEST_CASE(redis_stopped_gives_unavailable_and_the_same_store_recovers_on_restart) {
  QuietLog quiet;
  OpenSslRandom rnd;
  RedisServer server;
  auto o = options(server.url(), fresh_prefix(rnd));
  o.lock_wait_ms = 0;
  auto store = open_or_throw(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_REQUIRE(store->load(s.id, kT0)->has_value());

  server.stop();
  auto l = store->load(s.id, kT0);
  BOOST_REQUIRE(!l.ok());
  BOOST_TEST(l.error().code == kSessionStoreUnavailable);
  BOOST_TEST(l.error().detail.find("127.0.0.1:" + std::to_string(server.port())) != std::string::npos);
  auto w = store->save(s);
  BOOST_REQUIRE(!w.ok());
  BOOST_TEST(w.error().code == kSessionStoreUnavailable);
  auto u = store->update(s.id, kT0, [](std::optional<Session>&) { return true; });
  BOOST_REQUIRE(!u.ok());
  BOOST_TEST(u.error().code == kSessionStoreUnavailable);
  auto rm = store->remove(s.id);
  BOOST_REQUIRE(!rm.ok());
  BOOST_TEST(rm.error().code == kSessionStoreUnavailable);
  auto gc = store->collect_expired(kT0, 10);
  BOOST_REQUIRE(!gc.ok());
  BOOST_TEST(gc.error().code == kSessionStoreUnavailable);
  BOOST_TEST(!store->ping().ok());

  server.restart();  // empty: no persistence
  auto again = store->load(s.id, kT0);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->has_value());
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
  BOOST_TEST(store->ping().ok());
}

BOOST_AUTO_TEST_CASE(a_connection_dropped_while_idle_is_replaced_without_an_error) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  // What Redis's idle `timeout` or a restart of a proxy does to the store's connection.
  BOOST_REQUIRE(raw.cmd({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}) != "0");
  auto r = store->load(s.id, kT0);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->has_value());
}

BOOST_AUTO_TEST_CASE(a_hung_redis_gives_unavailable_after_the_command_timeout_then_recovers) {
  QuietLog quiet;
  OpenSslRandom rnd;
  RedisServer server;
  auto o = options(server.url(), fresh_prefix(rnd));
  o.command_timeout_ms = 200;
  o.connect_timeout_ms = 200;
  auto store = open_or_throw(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  server.pause();
  auto l = store->load(s.id, kT0);
  BOOST_REQUIRE(!l.ok());
  BOOST_TEST(l.error().code == kSessionStoreUnavailable);
  BOOST_TEST(l.error().detail.find("did not answer in time") != std::string::npos);
  server.resume();
  auto again = store->load(s.id, kT0);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->has_value());
}

BOOST_AUTO_TEST_CASE(an_unreachable_redis_at_open_does_not_stop_the_store_from_working_later) {
  QuietLog quiet;
  OpenSslRandom rnd;
  RedisServer server;
  const auto o = options(server.url(), fresh_prefix(rnd));
  server.stop();
  auto opened = open_redis_session_store(o, rnd);
  BOOST_REQUIRE(opened.ok());
  auto& store = *opened;
  Session s = make_session(rnd);
  auto w = store->save(s);
  BOOST_REQUIRE(!w.ok());
  BOOST_TEST(w.error().code == kSessionStoreUnavailable);
  server.restart();
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE(a_wrong_or_missing_password_fails_open_with_redis_own_words) {
  OpenSslRandom rnd;
  RedisServer server({"--requirepass", "right-password"});
  auto wrong = options("redis://:wrong-password@127.0.0.1:" + std::to_string(server.port()), fresh_prefix(rnd));
  auto r = open_redis_session_store(wrong, rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST(r.error().detail.find("AUTH") != std::string::npos);
  BOOST_TEST(r.error().detail.find("WRONGPASS") != std::string::npos);
  BOOST_TEST(r.error().detail.find("wrong-password") == std::string::npos);

  auto none = options(server.url(), fresh_prefix(rnd));
  auto n = open_redis_session_store(none, rnd);
  BOOST_REQUIRE(!n.ok());
  BOOST_TEST(n.error().detail.find("NOAUTH") != std::string::npos);
  BOOST_TEST(n.error().detail.find("needs a password") != std::string::npos);

  auto right = options("redis://:right-password@127.0.0.1:" + std::to_string(server.port()) + "/1", fresh_prefix(rnd));
  auto store = open_or_throw(right, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
  RawRedis raw(server.port(), "right-password");
  raw.cmd({"SELECT", "1"});
  BOOST_TEST(raw.cmd({"EXISTS", redis_session_key(right.key_prefix, s.id)}) == "1");
}

BOOST_AUTO_TEST_CASE(a_unix_socket_url_with_a_db_number_works) {
  OpenSslRandom rnd;
  auto& server = kinde_test::shared_redis();
  auto o = options("unix:" + server.socket_path() + "?db=3", fresh_prefix(rnd));
  auto store = open_or_throw(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
  RawRedis raw(server.port());
  BOOST_TEST(raw.cmd({"EXISTS", redis_session_key(o.key_prefix, s.id)}) == "0");
  raw.cmd({"SELECT", "3"});
  BOOST_TEST(raw.cmd({"EXISTS", redis_session_key(o.key_prefix, s.id)}) == "1");
}

BOOST_AUTO_TEST_CASE(a_db_number_redis_does_not_have_fails_open) {
  OpenSslRandom rnd;
  auto o = options(kinde_test::shared_redis_url() + "/999", fresh_prefix(rnd));
  auto r = open_redis_session_store(o, rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().detail.find("SELECT") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(collect_pages_through_many_keys_and_leaves_live_sessions_and_locks) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto o = options(kinde_test::shared_redis_url(), prefix, 600, 86400);
  o.gc_scan_count = 8;
  auto store = open_or_throw(o, rnd);
  RawRedis raw(kinde_test::shared_redis().port());
  std::vector<std::string> live;
  int dead = 0;
  for (int i = 0; i < 120; ++i) {
    Session s = make_session(rnd, kT0, i % 4 == 0 ? kT0 + 1000 : kT0);
    BOOST_REQUIRE(store->save(s).ok());
    if (i % 4 == 0) live.push_back(s.id);
    else ++dead;
  }
  raw.cmd({"SET", prefix + "l:" + std::string(64, 'a'), "a-lock", "PX", "10000"});
  raw.cmd({"SET", prefix + "s:" + std::string(64, 'b'), "foreign bytes"});
  // Bounded calls never pass their budget.
  auto one = store->collect_expired(kT0 + 1200, 3);
  BOOST_REQUIRE(one.ok());
  BOOST_TEST(*one <= 3u);
  auto rest = store->collect_expired(kT0 + 1200, 0);
  BOOST_REQUIRE(rest.ok());
  BOOST_TEST(*one + *rest == static_cast<std::size_t>(dead));
  for (const auto& id : live) BOOST_TEST(store->load(id, kT0 + 1200)->has_value());
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "l:" + std::string(64, 'a')}) == "1");
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "s:" + std::string(64, 'b')}) == "1");
}

// ---- refresh grace cache --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_kept_refresh_result_is_a_sealed_key_named_by_a_hash_that_redis_drops_after_30_s) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  auto store = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  const std::string id = rnd.token(32);
  const std::string spent = "SPENT-REFRESH-" + rnd.token(12);
  BOOST_REQUIRE(store->keep_refresh_result(id, spent, {{"tokens", {{"access_token", "AT-CLEAR-MARKER"}}}}, kT0).ok());
  RawRedis raw(kinde_test::shared_redis().port());
  const std::string key = prefix + "r:" + refresh_grace_name(spent);
  const std::string value = raw.cmd({"GET", key});
  BOOST_TEST(value.substr(0, 3) == "KRG");
  BOOST_TEST(value.find("AT-CLEAR-MARKER") == std::string::npos);
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "r:" + spent}) == "0");
  const long pttl = std::stol(raw.cmd({"PTTL", key}));
  BOOST_TEST(pttl > 25000);
  BOOST_TEST(pttl <= 30000);
  // Another secret cannot open it; the right one can.
  auto ob = options(kinde_test::shared_redis_url(), prefix);
  ob.secret = kSecretB;
  auto other = open_or_throw(ob, rnd);
  auto foreign = other->refresh_result(id, spent, kT0);
  BOOST_REQUIRE(foreign.ok());
  BOOST_TEST(!foreign->has_value());
  auto mine = store->refresh_result(id, spent, kT0);
  BOOST_REQUIRE(mine.ok() && mine->has_value());
  BOOST_TEST((**mine)["tokens"]["access_token"] == "AT-CLEAR-MARKER");
}

// ---- the provider cache in Redis -----------------------------------------------------------------

namespace {

const std::string kProviderIssuer = "https://idp.example";

// Serves discovery and a one-key JWKS; counts every request.
class CountingProvider : public HttpTransport {
 public:
  int requests = 0;
  Result<HttpResponse> perform(const HttpRequest& request) override {
    ++requests;
    HttpResponse res;
    res.status = 200;
    if (request.url == kProviderIssuer + "/.well-known/openid-configuration") {
      res.body = nlohmann::json({{"issuer", kProviderIssuer},
                                 {"authorization_endpoint", kProviderIssuer + "/oauth2/auth"},
                                 {"token_endpoint", kProviderIssuer + "/oauth2/token"},
                                 {"jwks_uri", kProviderIssuer + "/.well-known/jwks.json"}})
                     .dump();
    } else if (request.url == kProviderIssuer + "/.well-known/jwks.json") {
      res.body = kinde::testing::jwks_json({kinde::testing::jwk_json(kinde::testing::rsa_key(), "k1")});
    } else {
      res.status = 404;
    }
    return res;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(discovery_jwks_and_the_forced_fetch_limit_are_shared_through_redis) {
  OpenSslRandom rnd;
  const std::string prefix = fresh_prefix(rnd);
  Config config;
  config.issuer = kProviderIssuer;
  config.client_id = "client-1";
  FixedClock clock{kT0};
  // Two "processes": each its own store connection, cache and client.
  auto store1 = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  auto store2 = open_or_throw(options(kinde_test::shared_redis_url(), prefix), rnd);
  CountingProvider http1, http2;
  ProviderClient first(config, http1, clock, make_redis_provider_cache(*store1, 5000));
  first.warm_up();
  BOOST_TEST(http1.requests == 2);  // discovery and the JWKS
  RawRedis raw(kinde_test::shared_redis().port());
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "provider"}) == "1");

  ProviderClient second(config, http2, clock, make_redis_provider_cache(*store2, 5000));
  second.warm_up();
  BOOST_TEST(http2.requests == 0);  // both read from Redis
  BOOST_REQUIRE(second.metadata());
  BOOST_TEST(second.metadata()->token_endpoint == kProviderIssuer + "/oauth2/token");

  // An unknown kid forces one JWKS fetch; the limit holds for the other process too.
  auto forged = kinde::testing::sign_jwt({{"kid", "k-unknown"}}, {{"iss", kProviderIssuer}}, kinde::testing::rsa_key(), "RS256");
  (void)first.verify_id_token(forged, "", kT0);
  BOOST_TEST(http1.requests == 3);
  (void)second.verify_id_token(forged, "", kT0 + 1);
  BOOST_TEST(http2.requests == 0);
  // The forced fetch released its lock.
  BOOST_TEST(raw.cmd({"EXISTS", prefix + "provider-lock"}) == "0");
  // Other stores have no Redis cache.
  BOOST_TEST(!make_redis_provider_cache(*make_memory_session_store(SessionLimits{}), 5000));
}

BOOST_AUTO_TEST_SUITE_END()

// The file store under several processes at once (fork): no lost update, no torn read, and a
// writer killed with SIGKILL mid-save leaves the old or the new version, never garbage.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "session/file_store.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

using namespace kinde;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kT0 = 1'700'000'000;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/kinde-stress-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

FileStoreOptions options(const std::string& dir, bool fsync) {
  FileStoreOptions o;
  o.dir = dir;
  o.secret = std::string(40, 's');
  o.fsync = fsync;
  o.limits.idle_timeout = 1'000'000;
  o.limits.max_age = 10'000'000;
  return o;
}

// A payload tied to the counter and big enough (24 KiB) that a torn read could not look whole.
std::string pattern(std::int64_t counter) {
  std::string s = std::to_string(counter) + ":";
  while (s.size() < 24 * 1024) s += static_cast<char>('a' + (s.size() * 7 + static_cast<std::size_t>(counter)) % 26);
  return s;
}

// True when a loaded session is internally consistent (payload matches counter).
bool consistent(const Session& s) {
  if (!s.data.contains("counter") || !s.data["counter"].is_number_integer()) return false;
  if (!s.data.contains("blob") || !s.data["blob"].is_string()) return false;
  return s.data["blob"].get<std::string>() == pattern(s.data["counter"].get<std::int64_t>());
}

// Child exit codes.
enum : int { kChildOk = 0, kChildError = 10, kChildLost = 11, kChildTorn = 12, kChildBackwards = 13 };

// Runs body in a forked child; the child never returns into the test framework.
pid_t spawn(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = kChildError;
    try {
      code = body();
    } catch (...) {
      code = kChildError;
    }
    ::_exit(code);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// Increments "counter" under the lock, with a pause inside to make any race window wide.
bool increment(std::optional<Session>& cur, const std::string& id) {
  if (!cur) cur = Session{id, kT0, kT0, {{"counter", 0}, {"blob", pattern(0)}}};
  const std::int64_t next = cur->data["counter"].get<std::int64_t>() + 1;
  ::usleep(100);
  cur->data["counter"] = next;
  cur->data["blob"] = pattern(next);
  return true;
}

// Kills its own process with SIGKILL at one step of a save.
struct KillingOps : FileOps {
  enum class Step { after_create, mid_write, after_fsync, after_rename } step;
  explicit KillingOps(Step s) : step(s) {}
  bool armed = false;
  int open(const char* path, int flags, mode_t mode) override {
    int fd = FileOps::open(path, flags, mode);
    if (armed && step == Step::after_create && (flags & O_EXCL)) ::raise(SIGKILL);
    return fd;
  }
  ssize_t write(int fd, const void* buf, std::size_t n) override {
    if (armed && step == Step::mid_write) {
      FileOps::write(fd, buf, n / 2);
      ::raise(SIGKILL);
    }
    return FileOps::write(fd, buf, n);
  }
  int fsync(int fd) override {
    int rc = FileOps::fsync(fd);
    if (armed && step == Step::after_fsync) ::raise(SIGKILL);
    return rc;
  }
  int rename(const char* a, const char* b) override {
    int rc = FileOps::rename(a, b);
    if (armed && step == Step::after_rename) ::raise(SIGKILL);
    return rc;
  }
};

std::size_t count_temp_files(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) ++n;
  return n;
}

// Fails the test binary (SIGALRM) rather than hang forever if a lock is never released.
struct Watchdog {
  explicit Watchdog(unsigned seconds) { ::alarm(seconds); }
  ~Watchdog() { ::alarm(0); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(session_stress)

BOOST_AUTO_TEST_CASE(concurrent_processes_lose_no_update_and_never_read_a_torn_session) {
  TempDir t;
  Watchdog dog(60);
  OpenSslRandom rnd;
  const std::string shared_id = rnd.token(32);   // exists from the start
  const std::string created_id = rnd.token(32);  // absent: the first update creates it
  {
    auto store = std::move(open_file_session_store(options(t.path, false), rnd)).value();
    BOOST_REQUIRE(store->save(Session{shared_id, kT0, kT0, {{"counter", 0}, {"blob", pattern(0)}}}).ok());
  }
  constexpr int kWriters = 4;
  constexpr int kRounds = 120;
  std::vector<std::string> own_ids;
  for (int i = 0; i < kWriters; ++i) own_ids.push_back(rnd.token(32));

  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pids.push_back(spawn([&, w]() -> int {
      OpenSslRandom r;
      auto opened = open_file_session_store(options(t.path, false), r);
      if (!opened) return kChildError;
      auto& store = *opened.value();
      std::int64_t seen = -1;
      for (int i = 0; i < kRounds; ++i) {
        if (!store.update(shared_id, kT0, [&](auto& cur) { return increment(cur, shared_id); })) return kChildError;
        if (!store.update(created_id, kT0, [&](auto& cur) { return increment(cur, created_id); })) return kChildError;
        if (!store.update(own_ids[w], kT0, [&](auto& cur) { return increment(cur, own_ids[w]); })) return kChildError;
        auto l = store.load(shared_id, kT0);
        if (!l) return kChildError;
        if (!l->has_value()) return kChildLost;
        if (!consistent(**l)) return kChildTorn;
        const auto c = (**l).data["counter"].get<std::int64_t>();
        if (c < seen) return kChildBackwards;
        seen = c;
      }
      return kChildOk;
    }));
  }
  // A pure reader: lock-free loads while the writers replace the file under it.
  pids.push_back(spawn([&]() -> int {
    OpenSslRandom r;
    auto opened = open_file_session_store(options(t.path, false), r);
    if (!opened) return kChildError;
    std::int64_t seen = -1;
    for (int i = 0; i < 3000; ++i) {
      auto l = opened.value()->load(shared_id, kT0);
      if (!l) return kChildError;
      if (!l->has_value()) return kChildLost;
      if (!consistent(**l)) return kChildTorn;
      const auto c = (**l).data["counter"].get<std::int64_t>();
      if (c < seen) return kChildBackwards;
      seen = c;
    }
    return kChildOk;
  }));
  for (pid_t p : pids) BOOST_TEST(wait_exit_code(p) == kChildOk);

  auto store = std::move(open_file_session_store(options(t.path, false), rnd)).value();
  auto shared = store->load(shared_id, kT0);
  BOOST_REQUIRE(shared.ok() && shared->has_value());
  BOOST_TEST((**shared).data["counter"] == kWriters * kRounds);
  BOOST_TEST(consistent(**shared));
  auto created = store->load(created_id, kT0);
  BOOST_REQUIRE(created.ok() && created->has_value());
  BOOST_TEST((**created).data["counter"] == kWriters * kRounds);
  for (const auto& id : own_ids) {
    auto own = store->load(id, kT0);
    BOOST_REQUIRE(own.ok() && own->has_value());
    BOOST_TEST((**own).data["counter"] == kRounds);
  }
  BOOST_TEST(count_temp_files(t.path) == 0u);
}

BOOST_AUTO_TEST_CASE(writer_killed_at_each_step_of_a_save_leaves_old_or_new_version) {
  using Step = KillingOps::Step;
  const struct {
    Step step;
    bool expect_new;
    bool expect_temp;
  } cases[] = {{Step::after_create, false, true},
               {Step::mid_write, false, true},
               {Step::after_fsync, false, true},
               {Step::after_rename, true, false}};
  for (const auto& c : cases) {
    TempDir t;
    Watchdog dog(30);
    OpenSslRandom rnd;
    auto store = std::move(open_file_session_store(options(t.path, true), rnd)).value();
    // Real times here: the sweep below runs at a real "later" and must find the session alive.
    const std::int64_t now = ::time(nullptr);
    Session s{rnd.token(32), now, now, {{"counter", 1}, {"blob", pattern(1)}}};
    BOOST_REQUIRE(store->save(s).ok());

    pid_t pid = spawn([&]() -> int {
      OpenSslRandom r;
      auto ops = std::make_shared<KillingOps>(c.step);
      auto o = options(t.path, true);
      o.ops = ops;
      auto opened = open_file_session_store(o, r);
      if (!opened) return kChildError;
      ops->armed = true;
      // Through update, so the kill happens with the session's lock held.
      auto u = opened.value()->update(s.id, kT0, [&](auto& cur) { return increment(cur, s.id); });
      return u ? kChildOk : kChildError;  // not reached: the ops kill the process first
    });
    BOOST_TEST(wait_exit_code(pid) == 1000 + SIGKILL);

    auto l = store->load(s.id, kT0);
    BOOST_REQUIRE(l.ok() && l->has_value());
    BOOST_TEST(consistent(**l));
    BOOST_TEST((**l).data["counter"] == (c.expect_new ? 2 : 1));
    BOOST_TEST((count_temp_files(t.path) > 0) == c.expect_temp);

    // The dead writer's lock died with it: the next update goes through at once.
    auto u = store->update(s.id, kT0, [&](auto& cur) { return increment(cur, s.id); });
    BOOST_REQUIRE(u.ok() && u->has_value());
    BOOST_TEST((**u).data["counter"] == (c.expect_new ? 3 : 2));

    // A later sweep removes the stray temp file and nothing else.
    const std::int64_t later = ::time(nullptr) + options(t.path, true).stray_temp_age + 1;
    BOOST_REQUIRE(store->collect_expired(later, 0).ok());
    BOOST_TEST(count_temp_files(t.path) == 0u);
    BOOST_TEST(fs::exists(session_file_path(t.path, s.id)));
  }
}

BOOST_AUTO_TEST_CASE(writer_killed_at_random_moments_never_leaves_garbage) {
  TempDir t;
  Watchdog dog(60);
  OpenSslRandom rnd;
  auto store = std::move(open_file_session_store(options(t.path, true), rnd)).value();
  Session s{rnd.token(32), kT0, kT0, {{"counter", 0}, {"blob", pattern(0)}}};
  BOOST_REQUIRE(store->save(s).ok());
  std::int64_t last = 0;
  for (int round = 0; round < 15; ++round) {
    // The child says when its first update is done, so the random kill lands inside the update loop
    // rather than in fork/exec start-up on a loaded machine (where 2-27 ms may pass before it runs).
    int ready[2];
    BOOST_REQUIRE(::pipe(ready) == 0);
    pid_t pid = spawn([&]() -> int {
      ::close(ready[0]);
      OpenSslRandom r;
      auto opened = open_file_session_store(options(t.path, true), r);
      if (!opened) return kChildError;
      for (bool first = true;; first = false) {
        if (!opened.value()->update(s.id, kT0, [&](auto& cur) { return increment(cur, s.id); })) return kChildError;
        if (first && ::write(ready[1], "x", 1) != 1) return kChildError;
      }
    });
    ::close(ready[1]);
    char byte = 0;
    BOOST_REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::close(ready[0]);
    const auto delay = 2 + static_cast<unsigned char>(rnd.bytes(1)[0]) % 25;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ::kill(pid, SIGKILL);
    BOOST_TEST(wait_exit_code(pid) == 1000 + SIGKILL);
    auto l = store->load(s.id, kT0);
    BOOST_REQUIRE(l.ok() && l->has_value());
    BOOST_REQUIRE(consistent(**l));
    const auto c = (**l).data["counter"].get<std::int64_t>();
    BOOST_TEST(c >= last);
    last = c;
  }
  BOOST_TEST(last > 0);  // the writers did get work done between kills
}

BOOST_AUTO_TEST_SUITE_END()

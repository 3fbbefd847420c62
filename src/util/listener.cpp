#include "util/listener.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "util/log.hpp"

namespace kinde {
namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

bool parse_decimal(const std::string& text, long long& out) {
  if (text.empty() || text.size() > 18) return false;
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

struct WorkerSlot {
  pid_t pid = 0;
  double started = 0;
  double restart_at = 0;
};

}  // namespace

Result<int> listen_fds_count(const std::optional<std::string>& listen_pid,
                             const std::optional<std::string>& listen_fds, pid_t self) {
  if (!listen_pid || !listen_fds) return 0;
  long long pid = 0;
  long long n = 0;
  if (!parse_decimal(*listen_pid, pid))
    return make_error(kListenFdsInvalid, "LISTEN_PID is not a process id: '" + *listen_pid + "'");
  if (pid != self) return 0;
  if (!parse_decimal(*listen_fds, n) || n > 1024)
    return make_error(kListenFdsInvalid, "LISTEN_FDS is not a number of descriptors: '" + *listen_fds + "'");
  return static_cast<int>(n);
}

bool is_listening_socket(int fd) {
  int accepting = 0;
  int type = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0) return false;
  len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return false;
  return accepting != 0 && type == SOCK_STREAM;
}

Result<bool> adopt_systemd_socket() {
  auto count = listen_fds_count(env_value("LISTEN_PID"), env_value("LISTEN_FDS"), getpid());
  // Never passed on: a worker or a program the app starts is not the process systemd meant.
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!count) return count.error();
  if (*count == 0) return false;
  if (*count != 1)
    return make_error(kListenFdsInvalid, "systemd passed " + std::to_string(*count) +
                                                " sockets; kinde.fcgi serves one (one ListenStream= in the .socket unit)");
  if (!is_listening_socket(kListenFdsStart))
    return make_error(kListenFdsInvalid, "the descriptor systemd passed (fd 3) is not a listening stream socket "
                                            "(the .socket unit needs ListenStream= and Accept=no)");
  // libfcgi expects a blocking accept (a .socket unit may say NonBlocking=yes).
  int flags = fcntl(kListenFdsStart, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(kListenFdsStart, F_SETFL, flags & ~O_NONBLOCK);
  if (dup2(kListenFdsStart, 0) != 0)
    return make_error(kListenFdsInvalid, std::string("cannot move the socket to fd 0: ") + std::strerror(errno));
  close(kListenFdsStart);
  return true;
}

namespace {

// The supervisor's state: its signal set, the caller's mask (restored in workers) and the slots.
struct Supervisor {
  sigset_t waited;
  sigset_t caller_mask;
  pid_t pid = 0;
  std::vector<WorkerSlot> slots;
  bool stopping = false;
};

// Forks a worker into slot: true in the new worker, false in the supervisor.
bool start_worker(Supervisor& sv, WorkerSlot& slot) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sv.pid) _exit(0);  // the supervisor died before prctl took effect
    sigprocmask(SIG_SETMASK, &sv.caller_mask, nullptr);
    return true;
  }
  const double now = monotonic_seconds();
  if (pid < 0) {
    log_error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
    slot.pid = 0;
    slot.restart_at = now + 1;
    return false;
  }
  slot.pid = pid;
  slot.started = now;
  return false;
}

// Waits for a signal, or until the next restart is due; on SIGTERM/SIGINT starts stopping.
void wait_for_event(Supervisor& sv) {
  const double now = monotonic_seconds();
  double wait = 60;
  for (const auto& slot : sv.slots)
    if (!sv.stopping && slot.pid == 0 && slot.restart_at - now < wait) wait = slot.restart_at - now;
  if (wait < 0) wait = 0;
  const auto whole = static_cast<time_t>(wait);
  timespec timeout{whole, static_cast<long>((wait - static_cast<double>(whole)) * 1e9)};
  const int sig = sigtimedwait(&sv.waited, nullptr, &timeout);
  if ((sig == SIGTERM || sig == SIGINT) && !sv.stopping) {
    sv.stopping = true;
    for (const auto& slot : sv.slots)
      if (slot.pid > 0) kill(slot.pid, SIGTERM);
  }
}

// Collects every worker that ended; a worker that lived under a second restarts a second later.
void reap_workers(Supervisor& sv) {
  int status = 0;
  pid_t done;
  while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
    const double now = monotonic_seconds();
    for (auto& slot : sv.slots) {
      if (slot.pid != done) continue;
      slot.pid = 0;
      if (sv.stopping) break;
      const bool quick = now - slot.started < 1.0;
      slot.restart_at = quick ? now + 1.0 : now;
      log_warn("supervisor: worker " + std::to_string(done) + " " + describe_exit(status) + "; starting another" +
               (quick ? " in a second" : ""));
      break;
    }
  }
}

}  // namespace

ProcessRole run_workers(int count) {
  Supervisor sv;
  // The supervisor waits for these signals with sigtimedwait instead of handling them.
  sigemptyset(&sv.waited);
  sigaddset(&sv.waited, SIGCHLD);
  sigaddset(&sv.waited, SIGTERM);
  sigaddset(&sv.waited, SIGINT);
  sigprocmask(SIG_BLOCK, &sv.waited, &sv.caller_mask);
  sv.pid = getpid();
  sv.slots.resize(static_cast<std::size_t>(count));
  for (auto& slot : sv.slots)
    if (start_worker(sv, slot)) return ProcessRole::worker;
  log_info("supervisor: " + std::to_string(count) + " workers started");
  for (;;) {
    wait_for_event(sv);
    reap_workers(sv);
    bool any_alive = false;
    for (const auto& slot : sv.slots) any_alive = any_alive || slot.pid > 0;
    if (sv.stopping) {
      if (!any_alive) return ProcessRole::supervisor_done;
      continue;
    }
    const double now = monotonic_seconds();
    for (auto& slot : sv.slots)
      if (slot.pid == 0 && slot.restart_at <= now && start_worker(sv, slot)) return ProcessRole::worker;
  }
}

}  // namespace kinde

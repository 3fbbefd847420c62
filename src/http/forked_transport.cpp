#include "http/forked_transport.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "util/log.hpp"

namespace kinde {
namespace {

// The child's answer on the pipe: a tag byte, then length-prefixed fields, then kEnd (so that a
// child that died half-way is told apart from a complete answer).
constexpr char kOk = 'R';
constexpr char kFailed = 'E';
constexpr char kEnd = '.';
constexpr std::size_t kMaxAnswer = 4 * 1024 * 1024;  // the body is capped at 1 MiB by libcurl's transport
constexpr int kPipeFd = 255;                          // where the child keeps its end of the pipe

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

std::string encode(const Result<HttpResponse>& r) {
  std::string out;
  if (!r) {
    out.push_back(kFailed);
    put_str(out, r.error().code);
    put_str(out, r.error().detail);
  } else {
    out.push_back(kOk);
    put_u32(out, static_cast<std::uint32_t>(r->status));
    put_u32(out, static_cast<std::uint32_t>(r->headers.size()));
    for (const auto& [name, value] : r->headers) {
      put_str(out, name);
      put_str(out, value);
    }
    put_str(out, r->body);
  }
  out.push_back(kEnd);
  return out;
}

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  bool u32(std::uint32_t& v) {
    if (in_.size() - pos_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || in_.size() - pos_ < n) return false;
    s.assign(in_, pos_, n);
    pos_ += n;
    return true;
  }
  bool byte(char& c) {
    if (pos_ >= in_.size()) return false;
    c = in_[pos_++];
    return true;
  }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  const std::string& in_;
  std::size_t pos_ = 0;
};

// Decodes a complete answer; false when it is truncated or malformed.
bool decode(const std::string& in, Result<HttpResponse>& out) {
  Reader rd(in);
  char tag = 0, end = 0;
  if (!rd.byte(tag)) return false;
  if (tag == kFailed) {
    std::string code, detail;
    if (!rd.str(code) || !rd.str(detail) || !rd.byte(end) || end != kEnd || !rd.at_end()) return false;
    out = make_error(std::move(code), std::move(detail));
    return true;
  }
  if (tag != kOk) return false;
  HttpResponse resp;
  std::uint32_t status = 0, count = 0;
  if (!rd.u32(status) || !rd.u32(count)) return false;
  resp.status = static_cast<long>(status);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!rd.str(name) || !rd.str(value)) return false;
    resp.headers.emplace(std::move(name), std::move(value));
  }
  if (!rd.str(resp.body) || !rd.byte(end) || end != kEnd || !rd.at_end()) return false;
  out = std::move(resp);
  return true;
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent gave up (timeout): nothing to tell anyone
    off += static_cast<std::size_t>(n);
  }
}

// In the child: nothing of the serving process's descriptors (the FastCGI socket, a request's
// connection, session files and their locks, Redis) stays open, only stderr for the log and the pipe.
// stdin and stdout become /dev/null, and so does stderr when it was closed and the pipe took its number.
[[noreturn]] void run_child(HttpTransport& inner, const HttpRequest& request, const int pipe_fds[2]) {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  if (::dup2(pipe_fds[1], kPipeFd) < 0) _exit(2);
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd < 0) _exit(2);
  ::dup2(null_fd, 0);
  ::dup2(null_fd, 1);
  if (pipe_fds[0] == 2 || pipe_fds[1] == 2) ::dup2(null_fd, 2);
  if (::close_range(3, kPipeFd - 1, 0) != 0)
    for (int fd = 3; fd < kPipeFd; ++fd) ::close(fd);
  if (::close_range(kPipeFd + 1, ~0U, 0) != 0)
    for (long fd = kPipeFd + 1; fd < ::sysconf(_SC_OPEN_MAX); ++fd) ::close(static_cast<int>(fd));
  write_all(kPipeFd, encode(inner.perform(request)));
  _exit(0);
}

void reap(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::atomic<bool> g_fork_failed_logged{false};

}  // namespace

ForkedTransport::ForkedTransport(std::unique_ptr<HttpTransport> inner) : inner_(std::move(inner)) {}

Result<HttpResponse> ForkedTransport::perform(const HttpRequest& request) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    log_once(g_fork_failed_logged, LogLevel::warn,
             std::string("provider calls run in the serving process: pipe: ") + std::strerror(errno));
    return inner_->perform(request);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    log_once(g_fork_failed_logged, LogLevel::warn,
             std::string("provider calls run in the serving process: fork: ") + std::strerror(err));
    return inner_->perform(request);
  }
  if (pid == 0) run_child(*inner_, request, fds);
  ::close(fds[1]);

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(request.total_timeout_ms + kChildGraceMs);
  std::string answer;
  char buf[16384];
  bool eof = false, too_big = false;
  while (!eof && !too_big) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
      break;
    }
    answer.append(buf, static_cast<std::size_t>(n));
    too_big = answer.size() > kMaxAnswer;
  }
  ::close(fds[0]);
  if (!eof) {
    ::kill(pid, SIGKILL);
    reap(pid);
    if (too_big) return make_error(kHttpFailed, "provider call: answer larger than 4 MiB");
    return make_error(kHttpTimeout, "provider call to " + request.url + " did not finish within " +
                                        std::to_string(request.total_timeout_ms) + " ms");
  }
  reap(pid);
  Result<HttpResponse> out = make_error(kHttpFailed, "");
  if (!decode(answer, out))
    return make_error(kHttpFailed, "provider call to " + request.url + ": its process ended without an answer");
  return out;
}

}  // namespace kinde

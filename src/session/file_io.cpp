#include "session/file_io.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "session/sealed.hpp"

namespace kinde::fileio {

std::string errno_text(int e) {
  std::string t = std::strerror(e);
  if (!t.empty() && t[0] >= 'A' && t[0] <= 'Z') t[0] = static_cast<char>(t[0] - 'A' + 'a');
  return t;
}

int read_all(FileOps& ops, int fd, std::string& out) {
  struct stat st {};
  if (ops.fstat(fd, &st) != 0) return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return -1;
  }
  // Records are never changed in place (writers rename a new file over them), so st_size is the
  // final length and one read usually suffices.
  const auto want = std::min<std::size_t>(static_cast<std::size_t>(st.st_size), kSealedMaxSize + 1);
  out.assign(want, '\0');
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ops.read(fd, out.data() + got, want - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return 0;
}

int write_all(FileOps& ops, int fd, std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ops.write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {  // a write that makes no progress is a full device in all but name
      errno = ENOSPC;
      return -1;
    }
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

Error unavailable(int e, const std::string& action, const std::string& where) {
  return make_error(kSessionStoreUnavailable, errno_text(e) + " " + action + " (" + where + ")");
}

std::string text(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out += part;
  return out;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace kinde::fileio

// check_sessions SESSION_DIR KEY_FILE < ids: scans a file store's session directory after a soak run with the
// store's own record code and prints one JSON line of counts. A record is "torn" when its header is
// unreadable (peek_session_header) or, for the session ids given on stdin (one per line, the cookie
// values the soak clients still hold), when it does not decrypt and authenticate (open_session).
// Exit status: 0 when no record is torn, 1 when some are, 2 on a usage or I/O error.
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "session/file_store.hpp"
#include "session/sealed.hpp"

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

std::vector<std::string> list(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

bool is_hex_name(const std::string& n, std::size_t len) {
  if (n.size() != len) return false;
  for (char c : n) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: check_sessions SESSION_DIR KEY_FILE < session-ids\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::string key_file = argv[2];
  std::string secret;
  // The soak runs without KINDE_SESSION_SECRET: the app created its key file (session.key).
  if (!read_file(key_file, secret) || secret.size() < 32) {
    std::cerr << "check_sessions: cannot read " << key_file << "\n";
    return 2;
  }
  const std::string key = kinde::derive_session_key(secret);

  long records = 0, torn_headers = 0, temp_files = 0, other = 0;
  for (const std::string& shard : list(dir)) {
    if (!is_hex_name(shard, 2)) continue;
    for (const std::string& name : list(dir + "/" + shard)) {
      const std::string path = dir + "/" + shard + "/" + name;
      if (!is_hex_name(name, 64)) {
        // Left-over temp files (a process killed between write and rename) are expected; the
        // store collects them later. Anything else is counted so a reader notices.
        if (name.rfind(".tmp-", 0) == 0) ++temp_files;
        else if (name != ".lock") ++other;
        continue;
      }
      ++records;
      std::string blob;
      std::int64_t created = 0, last_used = 0;
      if (!read_file(path, blob) || !kinde::peek_session_header(blob, created, last_used) ||
          blob.size() < kinde::kSealedHeaderSize + kinde::kSealedNonceSize + kinde::kSealedTagSize) {
        std::cerr << "torn record (header): " << path << " (" << blob.size() << " bytes)\n";
        ++torn_headers;
      }
    }
  }

  long ids = 0, present = 0, torn_sealed = 0;
  std::string id;
  while (std::getline(std::cin, id)) {
    if (id.empty()) continue;
    ++ids;
    std::string blob;
    if (!read_file(kinde::session_file_path(dir, id), blob)) continue;  // ended or never saved
    ++present;
    auto s = kinde::open_session(blob, key, id);
    if (!s) {
      std::cerr << "torn record (seal): " << s.error().code << ": " << s.error().detail << "\n";
      ++torn_sealed;
    }
  }

  std::cout << "{\"records\":" << records << ",\"torn_headers\":" << torn_headers << ",\"temp_files\":" << temp_files
            << ",\"other_files\":" << other << ",\"ids_checked\":" << ids << ",\"ids_present\":" << present
            << ",\"torn_sealed\":" << torn_sealed << "}\n";
  return (torn_headers + torn_sealed) == 0 ? 0 : 1;
}

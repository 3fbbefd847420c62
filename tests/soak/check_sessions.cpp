// check_sessions SESSION_DIR KEY_FILE < ids: scans a file store's session directory after a soak run with the
// store's own record code and prints one JSON line of counts. A record is "torn" when its header is
// unreadable (peek_session_header) or, for the session ids given on stdin (one per line, the cookie
// values the soak clients still hold), when it does not decrypt and authenticate (open_session).
// Exit status: 0 when no record is torn, 1 when some are, 2 on a usage or I/O error.
// check_sessions --redis URL PREFIX < ids: the same for a Redis store (records: the <PREFIX>s:* keys;
// each id's record must open under the key from $CHECK_SESSIONS_SECRET, the app's KINDE_SESSION_SECRET).
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cstdlib>

#include "session/file_store.hpp"
#include "session/redis_store.hpp"
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

// GET of one key: true and the value when present.
bool redis_get(redisContext* c, const std::string& key, std::string& out) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "GET %b", key.data(), key.size()));
  if (!r) return false;
  const bool found = r->type == REDIS_REPLY_STRING;
  if (found) out.assign(r->str, r->len);
  freeReplyObject(r);
  return found;
}

long redis_count(redisContext* c, const std::string& pattern) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "EVAL %s 0 %b", "return #redis.call('KEYS', ARGV[1])",
                                                  pattern.data(), pattern.size()));
  long n = r && r->type == REDIS_REPLY_INTEGER ? static_cast<long>(r->integer) : -1;
  if (r) freeReplyObject(r);
  return n;
}

int check_redis(const std::string& url, const std::string& prefix) {
  const char* secret = std::getenv("CHECK_SESSIONS_SECRET");
  auto addr = kinde::parse_redis_url(url);
  if (!secret || std::string(secret).size() < 32 || !addr || !addr->unix_path.empty()) {
    std::cerr << "check_sessions --redis: needs a redis://host:port URL and CHECK_SESSIONS_SECRET\n";
    return 2;
  }
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout(addr->host.c_str(), addr->port, tv);
  if (!c || c->err) {
    std::cerr << "check_sessions --redis: cannot connect\n";
    return 2;
  }
  if (!addr->password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", addr->password.c_str()));
  if (addr->db != 0) freeReplyObject(redisCommand(c, "SELECT %d", addr->db));
  const std::string key = kinde::derive_session_key(secret);
  const long records = redis_count(c, prefix + "s:*");
  long ids = 0, present = 0, torn_sealed = 0;
  std::string id;
  while (std::getline(std::cin, id)) {
    if (id.empty()) continue;
    ++ids;
    std::string blob;
    if (!redis_get(c, kinde::redis_session_key(prefix, id), blob)) continue;  // ended or never saved
    ++present;
    auto s = kinde::open_session(blob, key, id);
    if (!s) {
      std::cerr << "torn record (seal): " << s.error().code << ": " << s.error().detail << "\n";
      ++torn_sealed;
    }
  }
  redisFree(c);
  std::cout << "{\"records\":" << records << ",\"torn_headers\":0,\"temp_files\":0,\"other_files\":0"
            << ",\"ids_checked\":" << ids << ",\"ids_present\":" << present << ",\"torn_sealed\":" << torn_sealed
            << "}\n";
  return torn_sealed == 0 && records >= 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--redis") return check_redis(argv[2], argv[3]);
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
        else if (name != ".lock" && name.rfind(".grace-", 0) != 0) ++other;  // .grace-: refresh results
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

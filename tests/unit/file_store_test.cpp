// The flat-file session store and its sealed record format: directory safety, secrets, damaged
// files, injected faults (full disk, quota, permissions), a real full tmpfs, and load cost.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "session/file_setup.hpp"
#include "session/file_store.hpp"
#include "util/encoding.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

using namespace kinde;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kT0 = 1'700'000'000;
const std::string kSecretA(40, 'a');
const std::string kSecretB(40, 'b');

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& base = "/tmp") {
    std::string tmpl = base + "/kinde-filestore-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + base);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Collects log lines for the duration of a test.
struct LogCapture {
  std::vector<std::string> lines;
  LogCapture() {
    set_log_sink([this](std::string_view l) { lines.emplace_back(l); });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  bool contains(const std::string& text) const {
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Every name under dir, recursively (relative paths).
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  return out;
}

std::size_t count_temp_files(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& name : listing(dir))
    if (fs::path(name).filename().string().rfind(".tmp-", 0) == 0) ++n;
  return n;
}

Session make_session(Random& r, std::int64_t created = kT0, std::int64_t last_used = kT0) {
  Session s;
  s.id = r.token(32);
  s.created = created;
  s.last_used = last_used;
  s.data = {{"refresh_token", "REFRESH-" + r.token(12)}, {"sub", "kp_123"}};
  return s;
}

FileStoreOptions options(const std::string& dir, std::string secret = kSecretA) {
  FileStoreOptions o;
  o.dir = dir;
  o.secret = std::move(secret);
  o.fsync = false;
  return o;
}

std::unique_ptr<SessionStore> open_or_die(const FileStoreOptions& o, Random& r) {
  auto s = open_file_session_store(o, r);
  if (!s) throw std::runtime_error(s.error().code + ": " + s.error().detail);
  return std::move(s).value();
}

// A file system that fails the way a full disk, a quota or a read-only mount does, on request.
struct FaultyOps : FileOps {
  int create_errno = 0;  // open(O_CREAT) of a temp or lock file
  int write_errno = 0;   // after writing half of the first chunk
  int fsync_errno = 0;
  int close_errno = 0;   // close of a descriptor that was written to
  int rename_errno = 0;
  int mkdir_errno = 0;
  std::map<int, bool> written;

  int open(const char* path, int flags, mode_t mode) override {
    if ((flags & O_CREAT) && create_errno) {
      errno = create_errno;
      return -1;
    }
    return FileOps::open(path, flags, mode);
  }
  ssize_t write(int fd, const void* buf, std::size_t n) override {
    if (write_errno) {
      if (!written[fd] && n > 1) {
        written[fd] = true;
        return FileOps::write(fd, buf, n / 2);  // a partial write first, as a filling disk does
      }
      errno = write_errno;
      return -1;
    }
    written[fd] = true;
    return FileOps::write(fd, buf, n);
  }
  int fsync(int fd) override {
    if (fsync_errno) {
      errno = fsync_errno;
      return -1;
    }
    return FileOps::fsync(fd);
  }
  int close(int fd) override {
    const bool was_written = written[fd];
    written.erase(fd);
    int rc = FileOps::close(fd);
    if (rc == 0 && was_written && close_errno) {
      errno = close_errno;
      return -1;
    }
    return rc;
  }
  int rename(const char* from, const char* to) override {
    if (rename_errno) {
      errno = rename_errno;
      return -1;
    }
    return FileOps::rename(from, to);
  }
  int mkdir(const char* path, mode_t mode) override {
    if (mkdir_errno) {
      errno = mkdir_errno;
      return -1;
    }
    return FileOps::mkdir(path, mode);
  }
};

// Counts every call the store makes.
struct CountingOps : FileOps {
  std::size_t calls = 0, list_dirs = 0, opens = 0;
  int open(const char* p, int f, mode_t m) override { ++calls; ++opens; return FileOps::open(p, f, m); }
  ssize_t read(int fd, void* b, std::size_t n) override { ++calls; return FileOps::read(fd, b, n); }
  ssize_t write(int fd, const void* b, std::size_t n) override { ++calls; return FileOps::write(fd, b, n); }
  int fsync(int fd) override { ++calls; return FileOps::fsync(fd); }
  int close(int fd) override { ++calls; return FileOps::close(fd); }
  int rename(const char* a, const char* b) override { ++calls; return FileOps::rename(a, b); }
  int link(const char* a, const char* b) override { ++calls; return FileOps::link(a, b); }
  int unlink(const char* p) override { ++calls; return FileOps::unlink(p); }
  int mkdir(const char* p, mode_t m) override { ++calls; return FileOps::mkdir(p, m); }
  int fstat(int fd, struct stat* st) override { ++calls; return FileOps::fstat(fd, st); }
  int lstat(const char* p, struct stat* st) override { ++calls; return FileOps::lstat(p, st); }
  int stat(const char* p, struct stat* st) override { ++calls; return FileOps::stat(p, st); }
  int lock(int fd, bool w) override { ++calls; return FileOps::lock(fd, w); }
  int list_dir(const char* p, std::vector<std::string>& n) override { ++calls; ++list_dirs; return FileOps::list_dir(p, n); }
  void reset() { calls = list_dirs = opens = 0; }
};

// Checks the store refused to write and left the earlier session exactly as it was, with no
// temp file behind.
void check_fault(SessionStore& store, const Session& original, const std::string& dir, const Result<void>& r,
                 const std::string& detail_part) {
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST(r.error().detail.find(detail_part) != std::string::npos, "detail: " << r.error().detail);
  auto l = store.load(original.id, kT0);
  BOOST_REQUIRE(l.ok() && l->has_value());
  BOOST_TEST((*l)->data == original.data);
  BOOST_TEST(count_temp_files(dir) == 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(file_store)

// ---- sealed records ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(session_id_hash_is_hex_sha256) {
  BOOST_TEST(session_id_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(derived_key_is_32_bytes_deterministic_and_secret_dependent) {
  const std::string k1 = derive_session_key(kSecretA);
  BOOST_TEST(k1.size() == 32u);
  BOOST_TEST(k1 == derive_session_key(kSecretA));
  BOOST_TEST(k1 != derive_session_key(kSecretB));
  BOOST_TEST(k1 != kSecretA.substr(0, 32));
  BOOST_CHECK_THROW(derive_session_key(std::string(31, 'x')), std::invalid_argument);
}

// RFC 5869 appendix A, test cases 1 and 3 (SHA-256).
BOOST_AUTO_TEST_CASE(hkdf_matches_the_rfc_5869_test_vectors) {
  const std::string ikm(22, '\x0b');
  auto unhex = [](const std::string& h) {
    std::string out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
  };
  BOOST_TEST(hex_encode(hkdf_sha256(ikm, unhex("000102030405060708090a0b0c"), unhex("f0f1f2f3f4f5f6f7f8f9"), 42)) ==
             "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  BOOST_TEST(hex_encode(hkdf_sha256(ikm, "", "", 42)) ==
             "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// The session key must stay what OpenSSL's own HKDF gave before (sessions, key files and sign-in cookies
// of earlier versions must still open): compared with EVP_KDF "HKDF" for short, block-sized and long secrets.
BOOST_AUTO_TEST_CASE(derived_key_is_openssl_hkdf_of_the_secret) {
  for (std::size_t n : {32, 40, 64, 65, 200}) {
    std::string material;
    for (std::size_t i = 0; i < n; ++i) material += static_cast<char>((i * 37 + 11) & 0xff);
    std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), &EVP_KDF_free);
    BOOST_REQUIRE(kdf);
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
    std::string digest = "SHA256", info = "kinde-fcgi session v1";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
                           OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, material.data(), material.size()),
                           OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
                           OSSL_PARAM_construct_end()};
    std::string expected(32, '\0');
    BOOST_REQUIRE(EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(expected.data()), 32, params) == 1);
    BOOST_TEST(hex_encode(derive_session_key(material)) == hex_encode(expected), "secret of " << n << " bytes");
  }
  // And one fixed value, in case both ever changed together.
  BOOST_TEST(hex_encode(derive_session_key(kSecretA)) == "06b8bb254bb00a888674c699b7b0e3307c5b8cff708c85ed3ac8612c76884f3d");
}

BOOST_AUTO_TEST_CASE(sealed_record_round_trips_and_hides_the_data) {
  OpenSslRandom rnd;
  const std::string key = derive_session_key(kSecretA);
  Session s = make_session(rnd, kT0 - 5, kT0);
  const std::string blob = seal_session(s, key, rnd);
  BOOST_TEST(blob.find("REFRESH-") == std::string::npos);
  BOOST_TEST(blob.find(s.id) == std::string::npos);
  BOOST_TEST(blob.substr(0, 3) == "KSR");
  // A fresh nonce each time: the same session never seals to the same bytes.
  BOOST_TEST(blob != seal_session(s, key, rnd));
  auto r = open_session(blob, key, s.id);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->created == kT0 - 5);
  BOOST_TEST(r->last_used == kT0);
  BOOST_TEST(r->data == s.data);
  std::int64_t c = 0, u = 0;
  BOOST_TEST(peek_session_header(blob, c, u));
  BOOST_TEST(c == kT0 - 5);
  BOOST_TEST(u == kT0);
}

BOOST_AUTO_TEST_CASE(every_truncation_and_every_flipped_byte_is_rejected) {
  OpenSslRandom rnd;
  const std::string key = derive_session_key(kSecretA);
  Session s = make_session(rnd);
  const std::string blob = seal_session(s, key, rnd);
  for (std::size_t n = 0; n < blob.size(); ++n) {
    auto r = open_session(blob.substr(0, n), key, s.id);
    BOOST_REQUIRE_MESSAGE(!r.ok(), "prefix of " << n << " bytes accepted");
    BOOST_TEST(r.error().code == kSessionRecordInvalid);
  }
  for (std::size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    BOOST_REQUIRE_MESSAGE(!open_session(bad, key, s.id).ok(), "flip at byte " << i << " accepted");
  }
  BOOST_TEST(!open_session(blob + "x", key, s.id).ok());
}

BOOST_AUTO_TEST_CASE(wrong_key_other_id_other_version_and_bad_magic_say_which) {
  OpenSslRandom rnd;
  const std::string key = derive_session_key(kSecretA);
  Session s = make_session(rnd);
  const std::string blob = seal_session(s, key, rnd);

  auto foreign = open_session(blob, derive_session_key(kSecretB), s.id);
  BOOST_REQUIRE(!foreign.ok());
  BOOST_TEST(foreign.error().detail.find("authentication failed") != std::string::npos);

  auto moved = open_session(blob, key, rnd.token(32));
  BOOST_REQUIRE(!moved.ok());
  BOOST_TEST(moved.error().detail.find("authentication failed") != std::string::npos);

  std::string v2 = blob;
  v2[3] = 2;
  auto version = open_session(v2, key, s.id);
  BOOST_REQUIRE(!version.ok());
  BOOST_TEST(version.error().detail == "unsupported format version 2");

  auto magic = open_session("XYZ" + blob.substr(3), key, s.id);
  BOOST_REQUIRE(!magic.ok());
  BOOST_TEST(magic.error().detail.find("magic") != std::string::npos);
}

// ---- opening the store ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_directory_is_created_0700_and_holds_no_key) {
  TempDir t;
  OpenSslRandom rnd;
  const std::string dir = t.path + "/var/sessions";
  auto store = open_file_session_store(options(dir), rnd);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().detail));
  BOOST_TEST(mode_of(dir) == 0700u);
  BOOST_TEST(listing(dir).empty());  // no .secret: the key lives apart from the data
}

BOOST_AUTO_TEST_CASE(the_store_needs_key_material) {
  TempDir t;
  OpenSslRandom rnd;
  auto r = open_file_session_store(options(t.path, ""), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionSecretRequired);
  BOOST_TEST(listing(t.path).empty());
}

BOOST_AUTO_TEST_CASE(directory_writable_by_group_or_others_is_refused) {
  for (mode_t m : {0770, 0707, 0777, 0720}) {
    TempDir t;
    OpenSslRandom rnd;
    ::chmod(t.path.c_str(), m);
    auto r = open_file_session_store(options(t.path), rnd);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code == kSessionDirUnsafe);
    BOOST_TEST(r.error().detail.find("writable by group or others") != std::string::npos);
    BOOST_TEST(!fs::exists(t.path + "/.secret"));
  }
  TempDir ok;
  OpenSslRandom rnd;
  ::chmod(ok.path.c_str(), 0750);  // readable by the group is not a risk: files are 0600 and sealed
  BOOST_TEST(open_file_session_store(options(ok.path), rnd).ok());
}

BOOST_AUTO_TEST_CASE(directory_owned_by_another_user_is_refused) {
  TempDir t;
  OpenSslRandom rnd;
  BOOST_REQUIRE(::chown(t.path.c_str(), ::geteuid() + 4242, static_cast<gid_t>(-1)) == 0);
  auto r = open_file_session_store(options(t.path), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionDirUnsafe);
  BOOST_TEST(r.error().detail.find("owned by uid") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(configured_secret_shorter_than_32_bytes_is_refused) {
  TempDir t;
  OpenSslRandom rnd;
  auto r = open_file_session_store(options(t.path, "short-secret"), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionSecretWeak);
}

BOOST_AUTO_TEST_CASE(configured_secret_creates_no_secret_file_and_other_secrets_cannot_read) {
  TempDir t;
  OpenSslRandom rnd;
  LogCapture logs;
  auto a = open_or_die(options(t.path, kSecretA), rnd);
  BOOST_TEST(!fs::exists(t.path + "/.secret"));
  Session s = make_session(rnd);
  BOOST_REQUIRE(a->save(s).ok());
  auto b = open_or_die(options(t.path, kSecretB), rnd);
  auto lb = b->load(s.id, kT0);
  BOOST_REQUIRE(lb.ok());
  BOOST_TEST(!lb->has_value());
  BOOST_TEST(logs.contains("authentication failed"));
  auto a2 = open_or_die(options(t.path, kSecretA), rnd);
  BOOST_TEST(a2->load(s.id, kT0)->has_value());
  BOOST_TEST(count_temp_files(t.path) == 0u);
}

BOOST_AUTO_TEST_CASE(directory_that_cannot_be_created_is_unavailable) {
  TempDir t;
  OpenSslRandom rnd;
  write_file(t.path + "/file", "x");
  auto r = open_file_session_store(options(t.path + "/file/sessions"), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST(r.error().detail.find("not a directory") != std::string::npos);

  auto ops = std::make_shared<FaultyOps>();
  ops->mkdir_errno = EACCES;
  auto o = options(t.path + "/new");
  o.ops = ops;
  auto denied = open_file_session_store(o, rnd);
  BOOST_REQUIRE(!denied.ok());
  BOOST_TEST(denied.error().code == kSessionStoreUnavailable);
  BOOST_TEST(denied.error().detail.find("permission denied creating session directory") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unwritable_directory_is_unavailable_at_open) {
  TempDir t;
  OpenSslRandom rnd;
  auto ops = std::make_shared<FaultyOps>();
  ops->create_errno = EROFS;
  auto o = options(t.path);
  o.ops = ops;
  auto r = open_file_session_store(o, rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionStoreUnavailable);
  BOOST_TEST(r.error().detail.find("read-only file system") != std::string::npos, r.error().detail);
  BOOST_TEST(listing(t.path).empty());
}

// ---- files on disk -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(session_file_is_named_by_hash_0600_in_a_0700_shard_and_encrypted) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  const std::string h = session_id_hash(s.id);
  const std::string file = session_file_path(t.path, s.id);
  BOOST_TEST(file == t.path + "/" + h.substr(0, 2) + "/" + h);
  BOOST_TEST(mode_of(file) == 0600u);
  BOOST_TEST(mode_of(t.path + "/" + h.substr(0, 2)) == 0700u);
  for (const auto& name : listing(t.path)) BOOST_TEST(name.find(s.id) == std::string::npos);
  const std::string content = read_file(file);
  BOOST_TEST(content.find("REFRESH-") == std::string::npos);
  BOOST_TEST(content.find("kp_123") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(damaged_or_foreign_files_read_as_no_session_and_are_logged) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = make_session(rnd), other = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_REQUIRE(store->save(other).ok());
  const std::string file = session_file_path(t.path, s.id);
  const std::string good = read_file(file);

  TempDir t2;
  auto foreign_store = open_or_die(options(t2.path, kSecretB), rnd);
  BOOST_REQUIRE(foreign_store->save(s).ok());
  const std::string foreign = read_file(session_file_path(t2.path, s.id));

  std::string flipped = good;
  flipped[good.size() - 20] ^= 0x40;
  std::string tampered_header = good;
  tampered_header[19] ^= 0x01;  // last_used, to dodge the idle timeout
  std::string version2 = good;
  version2[3] = 2;

  const std::map<std::string, std::string> cases = {
      {"flipped ciphertext byte", flipped},
      {"truncated to half", good.substr(0, good.size() / 2)},
      {"truncated by one byte", good.substr(0, good.size() - 1)},
      {"zero length", ""},
      {"random garbage", rnd.bytes(good.size())},
      {"written with another secret", foreign},
      {"tampered header", tampered_header},
      {"format version 2", version2},
      {"another session's file", read_file(session_file_path(t.path, other.id))},
  };
  for (const auto& [what, content] : cases) {
    LogCapture logs;
    write_file(file, content);
    auto r = store->load(s.id, kT0);
    BOOST_REQUIRE_MESSAGE(r.ok(), what);
    BOOST_TEST(!r->has_value(), what);
    BOOST_TEST(logs.contains("ignored"), what);
    // update sees nothing either and can write a fresh session over the bad file.
    auto u = store->update(s.id, kT0, [&](std::optional<Session>& cur) {
      BOOST_TEST(!cur.has_value(), what);
      cur = s;
      return true;
    });
    BOOST_REQUIRE_MESSAGE(u.ok(), what);
    BOOST_TEST((*store->load(s.id, kT0))->data == s.data, what);
  }
}

BOOST_AUTO_TEST_CASE(symlink_in_place_of_a_session_file_is_not_followed) {
  TempDir t;
  OpenSslRandom rnd;
  LogCapture logs;
  auto store = open_or_die(options(t.path), rnd);
  Session s = make_session(rnd), victim = make_session(rnd);
  BOOST_REQUIRE(store->save(victim).ok());
  BOOST_REQUIRE(store->save(s).ok());
  const std::string file = session_file_path(t.path, s.id);
  fs::remove(file);
  fs::create_symlink(session_file_path(t.path, victim.id), file);
  auto r = store->load(s.id, kT0);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
  BOOST_TEST(logs.contains("symlink"));
}

// ---- faults --------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(full_disk_quota_and_permission_faults_keep_the_old_session_and_leave_no_temp_file) {
  TempDir t;
  OpenSslRandom rnd;
  auto ops = std::make_shared<FaultyOps>();
  auto o = options(t.path);
  o.fsync = true;
  o.ops = ops;
  auto store = open_or_die(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  Session changed = s;
  changed.data["refresh_token"] = "NEW";

  ops->write_errno = ENOSPC;
  check_fault(*store, s, t.path, store->save(changed), "no space left on device writing session");
  ops->write_errno = EDQUOT;
  check_fault(*store, s, t.path, store->save(changed), "disk quota exceeded writing session");
  ops->write_errno = 0;

  ops->fsync_errno = EIO;
  check_fault(*store, s, t.path, store->save(changed), "input/output error writing session");
  ops->fsync_errno = 0;

  ops->close_errno = EDQUOT;  // NFS reports quota on close
  check_fault(*store, s, t.path, store->save(changed), "disk quota exceeded writing session");
  ops->close_errno = 0;

  ops->create_errno = EACCES;
  check_fault(*store, s, t.path, store->save(changed), "permission denied creating session file");
  ops->create_errno = 0;

  ops->rename_errno = EROFS;
  check_fault(*store, s, t.path, store->save(changed), "read-only file system renaming session");
  ops->rename_errno = 0;

  // update's write fails the same way, and fn's change is not what the store holds.
  ops->write_errno = ENOSPC;
  auto u = store->update(s.id, kT0, [](std::optional<Session>& cur) {
    cur->data["refresh_token"] = "NEW";
    return true;
  });
  BOOST_REQUIRE(!u.ok());
  BOOST_TEST(u.error().code == kSessionStoreUnavailable);
  BOOST_TEST((*store->load(s.id, kT0))->data == s.data);
  BOOST_TEST(count_temp_files(t.path) == 0u);
  ops->write_errno = 0;

  // A new session in a shard that cannot be created.
  ops->mkdir_errno = EACCES;
  Session fresh = make_session(rnd);
  while (fs::exists(t.path + "/" + session_id_hash(fresh.id).substr(0, 2))) fresh = make_session(rnd);
  auto w = store->save(fresh);
  BOOST_REQUIRE(!w.ok());
  BOOST_TEST(w.error().code == kSessionStoreUnavailable);
  BOOST_TEST(w.error().detail.find("permission denied creating session directory") != std::string::npos);
  ops->mkdir_errno = 0;

  // Healthy again: the write goes through.
  BOOST_REQUIRE(store->save(changed).ok());
  BOOST_TEST((*store->load(s.id, kT0))->data["refresh_token"] == "NEW");
}

BOOST_AUTO_TEST_CASE(a_really_full_tmpfs_gives_unavailable_and_keeps_every_session) {
  TempDir t;
  OpenSslRandom rnd;
  const std::string dir = t.path + "/mnt";
  fs::create_directory(dir);
  const bool mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=256k,mode=0700") == 0;
  struct Unmount {
    std::string d;
    bool on;
    ~Unmount() {
      if (on) ::umount2(d.c_str(), MNT_DETACH);
    }
  } unmount{dir, mounted};
  auto o = options(dir);
  o.fsync = true;
  std::shared_ptr<FaultyOps> faulty;
  if (!mounted) {
    // No mount permission here: the same scenario through the seam, so the assertions still run.
    BOOST_TEST_MESSAGE("mount not permitted (" << std::strerror(errno) << "); simulating ENOSPC");
    faulty = std::make_shared<FaultyOps>();
    o.ops = faulty;
  }
  auto store = open_or_die(o, rnd);
  std::vector<Session> saved;
  Result<void> last = Ok{};
  for (int i = 0; i < 200; ++i) {
    Session s = make_session(rnd);
    s.data["padding"] = rnd.token(12 * 1024);  // ~16 KiB per file: a 256 KiB disk fills in ~16
    if (faulty && i == 10) faulty->write_errno = ENOSPC;
    last = store->save(s);
    if (!last) break;
    saved.push_back(s);
  }
  BOOST_REQUIRE(!last.ok());
  BOOST_TEST(last.error().code == kSessionStoreUnavailable);
  BOOST_TEST(last.error().detail.find("no space left on device writing session") != std::string::npos,
             last.error().detail);
  BOOST_TEST(saved.size() >= 3u);
  for (const auto& s : saved) {
    auto l = store->load(s.id, kT0);
    BOOST_REQUIRE(l.ok() && l->has_value());
    BOOST_TEST((*l)->data == s.data);
  }
  BOOST_TEST(count_temp_files(dir) == 0u);
  // Removing one session frees room and writes work again.
  BOOST_REQUIRE(store->remove(saved.front().id).ok());
  if (faulty) faulty->write_errno = 0;
  Session small = make_session(rnd);
  BOOST_TEST(store->save(small).ok());
}

// ---- cost and collection -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_cookie_never_reaches_the_file_system) {
  TempDir t;
  OpenSslRandom rnd;
  auto ops = std::make_shared<CountingOps>();
  auto o = options(t.path);
  o.ops = ops;
  auto store = open_or_die(o, rnd);
  ops->reset();
  for (const std::string& id : std::vector<std::string>{"../../.secret", "", "x", std::string(43, '/'), std::string(64, 'a')}) {
    BOOST_TEST(!store->load(id, kT0)->has_value());
    BOOST_TEST(store->remove(id).ok());
    BOOST_TEST(!store->update(id, kT0, [](std::optional<Session>&) { return false; })->has_value());
  }
  BOOST_TEST(ops->calls == 0u);
}

BOOST_AUTO_TEST_CASE(loading_one_session_costs_the_same_with_100000_files_and_never_lists_a_directory) {
  // Memory-backed when the machine has it: 100,000 creates on a disk take half a minute.
  TempDir t(fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  OpenSslRandom rnd;
  auto ops = std::make_shared<CountingOps>();
  auto o = options(t.path);
  o.ops = ops;
  auto store = open_or_die(o, rnd);
  std::vector<Session> ten;
  for (int i = 0; i < 10; ++i) {
    ten.push_back(make_session(rnd));
    BOOST_REQUIRE(store->save(ten.back()).ok());
  }
  ops->reset();
  BOOST_REQUIRE(store->load(ten[3].id, kT0)->has_value());
  const std::size_t calls_with_ten = ops->calls;
  BOOST_TEST(ops->list_dirs == 0u);
  BOOST_TEST(calls_with_ten <= 6u);  // open, fstat, read, close (+ slack)

  // 100,000 more files, written directly (sealing each would only slow the test down).
  const std::string filler(64, 'x');
  for (int i = 0; i < 100000; ++i) {
    const std::string h = session_id_hash("filler-" + std::to_string(i));
    const std::string shard = t.path + "/" + h.substr(0, 2);
    ::mkdir(shard.c_str(), 0700);
    int fd = ::open((shard + "/" + h).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::write(fd, filler.data(), filler.size()) == static_cast<ssize_t>(filler.size()));
    ::close(fd);
  }
  ops->reset();
  BOOST_REQUIRE(store->load(ten[3].id, kT0)->has_value());
  BOOST_TEST(ops->calls == calls_with_ten);
  BOOST_TEST(ops->list_dirs == 0u);

  // A bounded collection examines a bounded number of files, however many there are.
  ops->reset();
  BOOST_REQUIRE(store->collect_expired(kT0, 5).ok());
  BOOST_TEST(ops->opens <= o.gc_examine_limit);
  BOOST_TEST(ops->list_dirs <= o.gc_examine_limit);
}

BOOST_AUTO_TEST_CASE(collection_removes_stray_temp_files_and_old_garbage_but_not_live_files) {
  TempDir t;
  OpenSslRandom rnd;
  LogCapture logs;
  auto o = options(t.path);
  o.limits.idle_timeout = 600;
  o.limits.max_age = 3600;
  auto store = open_or_die(o, rnd);
  Session live = make_session(rnd), dead = make_session(rnd);
  const std::int64_t now = ::time(nullptr);
  live.created = live.last_used = now;
  dead.created = dead.last_used = now - 700;
  BOOST_REQUIRE(store->save(live).ok());
  BOOST_REQUIRE(store->save(dead).ok());
  const std::string shard = fs::path(session_file_path(t.path, live.id)).parent_path().string();
  const std::string stray = shard + "/.tmp-" + std::string(64, 'a') + "-0011223344556677";
  const std::string young_stray = shard + "/.tmp-" + std::string(64, 'b') + "-0011223344556677";
  const std::string garbage = shard + "/" + std::string(64, 'c');
  write_file(stray, "half a record");
  write_file(young_stray, "being written");
  write_file(garbage, "not a record");
  // Age the stray temp file and the garbage past their horizons.
  struct timespec old_times[2] = {{now - 4000, 0}, {now - 4000, 0}};
  ::utimensat(AT_FDCWD, stray.c_str(), old_times, 0);
  ::utimensat(AT_FDCWD, garbage.c_str(), old_times, 0);

  auto n = store->collect_expired(now, 0);
  BOOST_REQUIRE(n.ok());
  BOOST_TEST(*n == 1u);  // the one expired session; temp files and garbage are not sessions
  BOOST_TEST(!fs::exists(session_file_path(t.path, dead.id)));
  BOOST_TEST(fs::exists(session_file_path(t.path, live.id)));
  BOOST_TEST(!fs::exists(stray));
  BOOST_TEST(fs::exists(young_stray));
  BOOST_TEST(!fs::exists(garbage));
  BOOST_TEST(store->load(live.id, now)->has_value());
}

BOOST_AUTO_TEST_CASE(collection_skips_a_session_locked_by_a_writer) {
  TempDir t;
  OpenSslRandom rnd;
  auto o = options(t.path);
  o.limits.idle_timeout = 60;
  auto store = open_or_die(o, rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  // Hold the session's lock as a concurrent update would, from another descriptor.
  int fd = ::open(session_file_path(t.path, s.id).c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  FileOps real;
  BOOST_REQUIRE(real.lock(fd, true) == 0);
  BOOST_TEST(*store->collect_expired(kT0 + 1000, 0) == 0u);
  BOOST_TEST(fs::exists(session_file_path(t.path, s.id)));
  ::close(fd);
  BOOST_TEST(*store->collect_expired(kT0 + 1000, 0) == 1u);
  BOOST_TEST(!fs::exists(session_file_path(t.path, s.id)));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the Sealer (sign-in cookies) -------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(sealer)

BOOST_AUTO_TEST_CASE(sealed_values_round_trip_as_base64url_and_hide_the_text) {
  OpenSslRandom rnd;
  auto a = make_sealer(kSecretA, rnd);
  const std::string plain = R"({"s":"state-value","n":"nonce-value"})";
  const std::string one = a->seal(plain, "cookie_a");
  const std::string two = a->seal(plain, "cookie_a");
  BOOST_TEST(one != two);  // a fresh nonce each time
  for (char c : one) BOOST_TEST(((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'));
  BOOST_TEST(one.find("state-value") == std::string::npos);
  auto opened = a->open(one, "cookie_a");
  BOOST_REQUIRE(opened.ok());
  BOOST_TEST(*opened == plain);
  // Another server with the same key material (a shared KINDE_SESSION_SECRET) opens it.
  auto b = make_sealer(kSecretA, rnd);
  BOOST_TEST(b->open(two, "cookie_a").ok());
}

BOOST_AUTO_TEST_CASE(another_context_key_tampering_or_version_is_refused) {
  OpenSslRandom rnd;
  auto a = make_sealer(kSecretA, rnd);
  const std::string v = a->seal("payload", "cookie_a");
  auto expect_refused = [&](const std::string& what, const Result<std::string>& r) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.error().code == kSealedInvalid);
    }
  };
  expect_refused("other context", a->open(v, "cookie_b"));
  expect_refused("other key", make_sealer(kSecretB, rnd)->open(v, "cookie_a"));
  expect_refused("empty", a->open("", "cookie_a"));
  expect_refused("not base64url", a->open("a+b/c=", "cookie_a"));
  expect_refused("truncated", a->open(v.substr(0, v.size() - 4), "cookie_a"));
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string flipped = v;
    flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
    if (flipped == v) continue;
    auto r = a->open(flipped, "cookie_a");
    // The last character carries padding bits only for some lengths: either refused, or the same.
    if (r.ok()) BOOST_TEST(*r == "payload");
  }
  auto raw = *base64url_decode(v);
  raw[0] = 2;
  auto version = a->open(base64url_encode(raw), "cookie_a");
  BOOST_REQUIRE(!version.ok());
  BOOST_TEST(version.error().detail == "unsupported version 2");
  // The sign-in key is not the session key: a record sealed under the session key never opens here.
  const std::string session_key = derive_session_key(kSecretA);
  const std::string under_session_key =
      base64url_encode(std::string(1, '\x01') + aead_seal(session_key, std::string("kinde-fcgi sign-in v1") + '\0' + "\x01cookie_a", "payload", rnd));
  expect_refused("sealed under the session key", a->open(under_session_key, "cookie_a"));
}

BOOST_AUTO_TEST_CASE(short_key_material_is_refused) {
  OpenSslRandom rnd;
  BOOST_CHECK_THROW(make_sealer(std::string(31, 'x'), rnd), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the session key file (KINDE_SESSION_KEY_FILE) ---------------------------------------------------

namespace {

// A config folder and a session directory side by side, as an installation has them.
struct KeyLayout {
  TempDir t;
  std::string etc = t.path + "/etc", sessions = t.path + "/var/sessions";
  std::string key = etc + "/session.key", legacy = sessions + "/.secret";
  KeyLayout() {
    fs::create_directories(etc);
    fs::create_directories(sessions);
    ::chmod(sessions.c_str(), 0700);
  }
  SessionKeyFileOptions opts(std::shared_ptr<FileOps> ops = nullptr) const {
    SessionKeyFileOptions o;
    o.path = key;
    o.legacy_path = legacy;
    o.ops = std::move(ops);
    return o;
  }
  void write_key(const std::string& path, const std::string& content, mode_t mode = 0600) const {
    write_file(path, content);
    ::chmod(path.c_str(), mode);
  }
};

SessionKeyFile key_or_die(const SessionKeyFileOptions& o, Random& r) {
  auto k = load_or_create_session_key(o, r);
  if (!k) throw std::runtime_error(k.error().code + ": " + k.error().detail);
  return std::move(k).value();
}

// Refuses to link (a folder the app may not write), or links across file systems (EXDEV).
struct LinkOps : FileOps {
  int link_errno = EACCES;
  bool create_fails = false;
  int links = 0;
  int link(const char*, const char*) override {
    ++links;
    errno = link_errno;
    return -1;
  }
  int open(const char* path, int flags, mode_t mode) override {
    if ((flags & O_CREAT) && create_fails) {
      errno = EACCES;
      return -1;
    }
    return FileOps::open(path, flags, mode);
  }
};

struct CopyOnExdevOps : FileOps {
  int exdev_left = 1;  // the first link (legacy -> key) crosses file systems; the copy's link works
  int link(const char* from, const char* to) override {
    if (exdev_left-- > 0) {
      errno = EXDEV;
      return -1;
    }
    return FileOps::link(from, to);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(session_key_file)

BOOST_AUTO_TEST_CASE(created_0600_beside_the_config_and_reused_unchanged) {
  KeyLayout l;
  OpenSslRandom rnd;
  SessionKeyFile k = key_or_die(l.opts(), rnd);
  BOOST_TEST(k.note == "created");
  BOOST_TEST(!k.warning);
  BOOST_TEST(k.path == l.key);
  BOOST_TEST(mode_of(l.key) == 0600u);
  BOOST_TEST(read_file(l.key) == k.material);
  BOOST_TEST(k.material.size() == 48u);
  BOOST_TEST(listing(l.sessions).empty());
  BOOST_TEST(listing(l.etc).size() == 1u);  // no temp file left beside it
  struct stat before {};
  ::stat(l.key.c_str(), &before);
  SessionKeyFile again = key_or_die(l.opts(), rnd);
  BOOST_TEST(again.material == k.material);
  BOOST_TEST(again.note == "");
  struct stat after {};
  ::stat(l.key.c_str(), &after);
  BOOST_TEST(after.st_ino == before.st_ino);
  BOOST_TEST(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
}

BOOST_AUTO_TEST_CASE(a_key_file_made_by_a_package_is_used_as_it_is) {
  // As a Debian package would: text from openssl rand, owned by the app's user, 0600, in a folder
  // the app may not write (here: any create fails).
  KeyLayout l;
  OpenSslRandom rnd;
  const std::string made = "q3Vb0xS2mP9yWcL7kN4tR8uE1hJ6gF5dA0zX3cV9bN2mQ7wE4rT1yU8iO5pA6sD\n";
  l.write_key(l.key, made);
  auto ops = std::make_shared<LinkOps>();
  ops->create_fails = true;
  SessionKeyFile k = key_or_die(l.opts(ops), rnd);
  BOOST_TEST(k.material == made);
  BOOST_TEST(read_file(l.key) == made);
  BOOST_TEST(ops->links == 0);
}

BOOST_AUTO_TEST_CASE(a_key_file_readable_by_others_or_owned_by_another_user_is_refused) {
  for (mode_t m : {0640, 0604, 0660, 0700}) {
    KeyLayout l;
    OpenSslRandom rnd;
    l.write_key(l.key, std::string(48, 'x'), m);
    auto r = load_or_create_session_key(l.opts(), rnd);
    if (m == 0700) {
      BOOST_TEST(r.ok());  // the owner's own bits do not matter
      continue;
    }
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code == kSessionKeyUnsafe);
    BOOST_TEST(r.error().detail.find("readable or writable by group or others") != std::string::npos);
    BOOST_TEST(read_file(l.key) == std::string(48, 'x'));
  }
  KeyLayout l;
  OpenSslRandom rnd;
  l.write_key(l.key, std::string(48, 'x'));
  BOOST_REQUIRE(::chown(l.key.c_str(), ::geteuid() + 4242, static_cast<gid_t>(-1)) == 0);
  auto r = load_or_create_session_key(l.opts(), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionKeyUnsafe);
  BOOST_TEST(r.error().detail.find("owned by uid") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_short_key_file_is_refused_with_advice) {
  KeyLayout l;
  OpenSslRandom rnd;
  l.write_key(l.key, "");
  auto r = load_or_create_session_key(l.opts(), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionKeyUnavailable);
  BOOST_TEST(r.error().detail.find("delete it") != std::string::npos);
  BOOST_TEST(read_file(l.key) == "");
}

BOOST_AUTO_TEST_CASE(a_folder_the_app_cannot_write_is_named_with_how_to_make_the_key) {
  KeyLayout l;
  OpenSslRandom rnd;
  auto ops = std::make_shared<LinkOps>();
  ops->create_fails = true;
  auto r = load_or_create_session_key(l.opts(ops), rnd);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionKeyUnavailable);
  BOOST_TEST(r.error().detail.find("permission denied creating session key " + l.key) != std::string::npos);
  BOOST_TEST(r.error().detail.find("openssl rand") != std::string::npos);
  BOOST_TEST(!fs::exists(l.key));
}

BOOST_AUTO_TEST_CASE(a_key_where_older_versions_kept_it_moves_and_its_sessions_still_open) {
  KeyLayout l;
  OpenSslRandom rnd;
  // What an older version left: dir/.secret, and a session sealed under it.
  const std::string old_key = rnd.bytes(48);
  l.write_key(l.legacy, old_key);
  Session s = make_session(rnd);
  {
    auto before = open_or_die(options(l.sessions, old_key), rnd);
    BOOST_REQUIRE(before->save(s).ok());
  }
  SessionKeyFile k = key_or_die(l.opts(), rnd);
  BOOST_TEST(k.material == old_key);
  BOOST_TEST(k.note == "moved from " + l.legacy);
  BOOST_TEST(!k.warning);
  BOOST_TEST(!fs::exists(l.legacy));
  BOOST_TEST(read_file(l.key) == old_key);
  BOOST_TEST(mode_of(l.key) == 0600u);
  auto after = open_or_die(options(l.sessions, k.material), rnd);
  auto loaded = after->load(s.id, kT0);
  BOOST_REQUIRE(loaded.ok() && loaded->has_value());
  BOOST_TEST((*loaded)->data == s.data);
  // The next start finds it in its new place and nothing in the old one.
  SessionKeyFile next = key_or_die(l.opts(), rnd);
  BOOST_TEST(next.material == old_key);
  BOOST_TEST(next.note == "");
}

BOOST_AUTO_TEST_CASE(across_file_systems_the_key_is_copied_then_removed) {
  KeyLayout l;
  OpenSslRandom rnd;
  l.write_key(l.legacy, std::string(48, 'L'));
  auto ops = std::make_shared<CopyOnExdevOps>();
  SessionKeyFile k = key_or_die(l.opts(ops), rnd);
  BOOST_TEST(k.material == std::string(48, 'L'));
  BOOST_TEST(read_file(l.key) == std::string(48, 'L'));
  BOOST_TEST(mode_of(l.key) == 0600u);
  BOOST_TEST(!fs::exists(l.legacy));
  BOOST_TEST(listing(l.etc).size() == 1u);
}

BOOST_AUTO_TEST_CASE(when_the_key_cannot_move_the_old_place_keeps_working_with_a_warning) {
  KeyLayout l;
  OpenSslRandom rnd;
  l.write_key(l.legacy, std::string(48, 'L'));
  auto ops = std::make_shared<LinkOps>();
  ops->create_fails = true;
  SessionKeyFile k = key_or_die(l.opts(ops), rnd);
  BOOST_TEST(k.material == std::string(48, 'L'));  // nobody is signed out
  BOOST_TEST(k.warning);
  BOOST_TEST(k.path == l.legacy);
  BOOST_TEST(k.note.find("still in the session directory") != std::string::npos);
  BOOST_TEST(k.note.find("mv " + l.legacy + " " + l.key) != std::string::npos);
  BOOST_TEST(fs::exists(l.legacy));
  BOOST_TEST(!fs::exists(l.key));
}

BOOST_AUTO_TEST_CASE(an_old_copy_beside_a_key_file_is_removed_when_equal_and_reported_when_not) {
  KeyLayout l;
  OpenSslRandom rnd;
  l.write_key(l.key, std::string(48, 'K'));
  l.write_key(l.legacy, std::string(48, 'K'));  // a move cut short
  SessionKeyFile same = key_or_die(l.opts(), rnd);
  BOOST_TEST(!same.warning);
  BOOST_TEST(!fs::exists(l.legacy));
  l.write_key(l.legacy, std::string(48, 'O'));  // another key: never deleted by us, but named
  SessionKeyFile other = key_or_die(l.opts(), rnd);
  BOOST_TEST(other.material == std::string(48, 'K'));
  BOOST_TEST(other.warning);
  BOOST_TEST(other.note.find(l.legacy) != std::string::npos);
  BOOST_TEST(fs::exists(l.legacy));
}

BOOST_AUTO_TEST_CASE(a_dry_run_changes_nothing) {
  KeyLayout l;
  OpenSslRandom rnd;
  SessionKeyFileOptions o = l.opts();
  o.dry_run = true;
  SessionKeyFile none = key_or_die(o, rnd);
  BOOST_TEST(none.note.find("does not exist yet") != std::string::npos);
  BOOST_TEST(!fs::exists(l.key));
  l.write_key(l.legacy, std::string(48, 'L'));
  SessionKeyFile old = key_or_die(o, rnd);
  BOOST_TEST(old.material == std::string(48, 'L'));
  BOOST_TEST(old.note.find("moves it to " + l.key) != std::string::npos);
  BOOST_TEST(fs::exists(l.legacy));
  BOOST_TEST(!fs::exists(l.key));
}

// ---- refresh grace cache --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_kept_refresh_result_is_a_sealed_dot_file_named_by_a_hash_and_swept_after_30_s) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  const std::string spent = "SPENT-REFRESH-" + rnd.token(12);
  BOOST_REQUIRE(store->keep_refresh_result(s.id, spent, {{"tokens", {{"access_token", "AT-CLEAR-MARKER"}}}}, kT0).ok());
  const std::string name = refresh_grace_name(spent);
  const std::string file = t.path + "/" + name.substr(0, 2) + "/.grace-" + name;
  BOOST_REQUIRE(fs::exists(file));
  BOOST_TEST(mode_of(file) == 0600u);
  for (const auto& n : listing(t.path)) BOOST_TEST(n.find(spent) == std::string::npos);
  std::ifstream in(file, std::ios::binary);
  const std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(blob.substr(0, 3) == "KRG");
  BOOST_TEST(blob.find("AT-CLEAR-MARKER") == std::string::npos);
  BOOST_TEST(blob.find(spent) == std::string::npos);
  // Another key cannot open it.
  auto other = open_or_die(options(t.path, kSecretB), rnd);
  auto foreign = other->refresh_result(s.id, spent, kT0);
  BOOST_REQUIRE(foreign.ok());
  BOOST_TEST(!foreign->has_value());
  // Kept while young; swept (not counted as a session) once its grace period is over.
  auto young = store->collect_expired(kT0 + 10, 0);
  BOOST_REQUIRE(young.ok());
  BOOST_TEST(fs::exists(file));
  auto old = store->collect_expired(kT0 + kRefreshGraceSeconds, 0);
  BOOST_REQUIRE(old.ok());
  BOOST_TEST(*old == 0u);
  BOOST_TEST(!fs::exists(file));
  auto l = store->load(s.id, kT0 + kRefreshGraceSeconds);
  BOOST_TEST((l.ok() && l->has_value()));  // the session itself stays
}

BOOST_AUTO_TEST_SUITE_END()

// load_record: the decoded record is shared between loads of identical stored bytes, never beyond.
BOOST_AUTO_TEST_SUITE(decoded_record_cache)

Session signed_in_session(Random& r, const std::string& name) {
  Session s = make_session(r);
  SignedIn rec;
  rec.user = {{"id", "kp_123"}, {"given_name", name}};
  rec.tokens.access_token = "ACCESS-" + r.token(12);
  rec.tokens.expires_at = kT0 + 86400;
  s.data = record_to_json(rec);
  return s;
}

BOOST_AUTO_TEST_CASE(identical_bytes_share_one_decoded_record) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = signed_in_session(rnd, "Ada");
  BOOST_REQUIRE(store->save(s).ok());
  auto a = store->load_record(s.id, kT0 + 1);
  auto b = store->load_record(s.id, kT0 + 2);
  BOOST_REQUIRE(a.ok() && *a && (*a)->record);
  BOOST_REQUIRE(b.ok() && *b && (*b)->record);
  BOOST_TEST((*a)->record.get() == (*b)->record.get());
  BOOST_TEST((*a)->record->user.value("given_name", "") == "Ada");
  BOOST_TEST((*a)->session.id == s.id);
  BOOST_TEST((*a)->session.data.empty());
}

BOOST_AUTO_TEST_CASE(a_changed_record_decodes_anew_and_the_old_one_stays_as_it_was) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = signed_in_session(rnd, "Ada");
  BOOST_REQUIRE(store->save(s).ok());
  auto before = store->load_record(s.id, kT0 + 1);
  BOOST_REQUIRE(before.ok() && *before && (*before)->record);
  // Another process (a second store on the same directory) rewrites the session.
  auto other = open_or_die(options(t.path), rnd);
  auto changed = other->update(s.id, kT0 + 2, [](std::optional<Session>& cur) {
    SignedIn rec = *signed_in_from(cur->data);
    rec.user["given_name"] = "Augusta";
    cur->data = record_to_json(rec);
    return true;
  });
  BOOST_REQUIRE(changed.ok());
  auto after = store->load_record(s.id, kT0 + 3);
  BOOST_REQUIRE(after.ok() && *after && (*after)->record);
  BOOST_TEST((*after)->record.get() != (*before)->record.get());
  BOOST_TEST((*after)->record->user.value("given_name", "") == "Augusta");
  BOOST_TEST((*before)->record->user.value("given_name", "") == "Ada");
}

BOOST_AUTO_TEST_CASE(sessions_with_equal_contents_do_not_share_a_record) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s1 = signed_in_session(rnd, "Ada");
  Session s2 = s1;
  s2.id = rnd.token(32);
  BOOST_REQUIRE(store->save(s1).ok());
  BOOST_REQUIRE(store->save(s2).ok());
  auto a = store->load_record(s1.id, kT0 + 1);
  auto b = store->load_record(s2.id, kT0 + 1);
  BOOST_REQUIRE(a.ok() && *a && (*a)->record);
  BOOST_REQUIRE(b.ok() && *b && (*b)->record);
  BOOST_TEST((*a)->record.get() != (*b)->record.get());
  BOOST_TEST((*a)->session.id == s1.id);
  BOOST_TEST((*b)->session.id == s2.id);
}

BOOST_AUTO_TEST_CASE(a_cached_record_past_its_idle_timeout_or_removed_is_not_served) {
  TempDir t;
  OpenSslRandom rnd;
  FileStoreOptions o = options(t.path);
  o.limits = {3600, 86400};
  auto store = open_or_die(o, rnd);
  Session s = signed_in_session(rnd, "Ada");
  BOOST_REQUIRE(store->save(s).ok());
  auto warm = store->load_record(s.id, kT0 + 1);
  BOOST_REQUIRE(warm.ok() && *warm);
  auto idle = store->load_record(s.id, kT0 + 3601);
  BOOST_REQUIRE(idle.ok());
  BOOST_TEST(!*idle);
  Session s2 = signed_in_session(rnd, "Ada");
  BOOST_REQUIRE(store->save(s2).ok());
  BOOST_REQUIRE(store->load_record(s2.id, kT0 + 1).ok());
  BOOST_REQUIRE(store->remove(s2.id).ok());
  auto gone = store->load_record(s2.id, kT0 + 2);
  BOOST_REQUIRE(gone.ok());
  BOOST_TEST(!*gone);
}

BOOST_AUTO_TEST_CASE(the_cache_is_bounded_and_records_handed_out_outlive_it) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session first = signed_in_session(rnd, "First");
  BOOST_REQUIRE(store->save(first).ok());
  auto kept = store->load_record(first.id, kT0 + 1);
  BOOST_REQUIRE(kept.ok() && *kept && (*kept)->record);
  // Many other sessions push the first out of the bounded cache: its next load decodes again.
  for (int i = 0; i < 40; ++i) {
    Session s = signed_in_session(rnd, "Other");
    BOOST_REQUIRE(store->save(s).ok());
    BOOST_REQUIRE(store->load_record(s.id, kT0 + 1).ok());
  }
  auto again = store->load_record(first.id, kT0 + 2);
  BOOST_REQUIRE(again.ok() && *again && (*again)->record);
  BOOST_TEST((*again)->record.get() != (*kept)->record.get());
  BOOST_TEST((*kept)->record->user.value("given_name", "") == "First");
}

BOOST_AUTO_TEST_CASE(a_session_without_a_signed_in_record_keeps_its_data) {
  TempDir t;
  OpenSslRandom rnd;
  auto store = open_or_die(options(t.path), rnd);
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  auto l = store->load_record(s.id, kT0 + 1);
  BOOST_REQUIRE(l.ok() && *l);
  BOOST_TEST(!(*l)->record);
  BOOST_TEST((*l)->session.data.value("sub", "") == "kp_123");
}

BOOST_AUTO_TEST_SUITE_END()

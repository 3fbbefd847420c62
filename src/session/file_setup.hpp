// Setting up the file store: the session directory (created 0700, checked for owner and mode, probed
// for writing) and the session key file kept apart from it (KINDE_SESSION_KEY_FILE).
#pragma once
#include <sys/stat.h>

#include <memory>
#include <string>

#include "session/file_store.hpp"
#include "util/random.hpp"
#include "util/result.hpp"

namespace kinde {

// The generated session key, kept apart from the session data (KINDE_SESSION_KEY_FILE).
struct SessionKeyFileOptions {
  std::string path;          // the key file: read when present (never rewritten), else created 0600
  std::string legacy_path;   // where older versions kept it (<session dir>/.secret): moved to path
  bool dry_run = false;      // --check-config: change nothing, say what a start would do
  std::shared_ptr<FileOps> ops;  // null: the real file system
};

struct SessionKeyFile {
  std::string material;      // the key material (>= 32 bytes)
  std::string path;          // the file it came from (legacy_path while a move is impossible)
  std::string note;          // "" (found), "created", "moved from <legacy>", or a warning for the log
  bool warning = false;      // note is a warning: the key is still at the legacy place, or a stray copy is left
};

// Reads the key file, checked like the session directory (owned by the app's user, no access for
// group or others: Error "session_key_unsafe"); when it is missing, moves a key found at
// legacy_path there (so sessions sealed under it still open), or creates one (48 random bytes).
// Two processes starting at once agree on one key (link() refuses an existing name). When the move
// is impossible (the key's folder is not writable) the legacy key is used and `warning` is set, so
// nobody is signed out. Errors: "session_key_unsafe", "session_key_unavailable" (cannot read or
// create it; the detail says how to create it by hand).
Result<SessionKeyFile> load_or_create_session_key(const SessionKeyFileOptions& options, Random& random);

namespace fileio {

// mkdir -p: parents as 0755 (they hold nothing secret), the directory itself 0700.
Result<void> make_dirs(FileOps& ops, const std::string& dir);
// Error kSessionDirUnsafe unless st is owned by the app's user and has none of the forbidden bits.
Result<void> check_owner_and_mode(const struct stat& st, const std::string& what, mode_t forbidden,
                                  const char* forbidden_text);
// Nothing else proves the directory writable at start-up: create and remove a file.
Result<void> probe_writable(FileOps& ops, Random& random, const std::string& dir);

}  // namespace fileio
}  // namespace kinde

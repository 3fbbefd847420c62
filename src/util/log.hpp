// Logging: one line per event, to a sink chosen by main (FastCGI error stream, or stderr).
// Never pass a secret (client secret, token, code, session id) to these functions.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <string_view>

namespace kinde {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// Parses "error", "warn", "info", "debug"; nullopt-like false on anything else.
bool parse_log_level(std::string_view text, LogLevel& out);

// Sets the minimum level written (default info).
void set_log_level(LogLevel level);
LogLevel log_level();
// Sets where lines go (default: stderr). The sink receives a full line ending in '\n'.
void set_log_sink(std::function<void(std::string_view)> sink);

// Writes "kinde-fcgi[pid]: LEVEL: message" if level is enabled. Control characters are escaped.
void log(LogLevel level, std::string_view message);
inline void log_error(std::string_view m) { log(LogLevel::error, m); }
inline void log_warn(std::string_view m) { log(LogLevel::warn, m); }
inline void log_info(std::string_view m) { log(LogLevel::info, m); }
inline void log_debug(std::string_view m) { log(LogLevel::debug, m); }
// Logs at `level` the first time it is called with `flag` in this process (a condition of the setup, not of one
// request, that every request would otherwise repeat); later calls write nothing.
inline void log_once(std::atomic<bool>& flag, LogLevel level, std::string_view m) {
  if (!flag.exchange(true)) log(level, m);
}

}  // namespace kinde

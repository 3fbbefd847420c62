#include "util/log.hpp"

#include <unistd.h>

#include <cstdio>

namespace kinde {
namespace {

LogLevel g_level = LogLevel::info;
std::function<void(std::string_view)> g_sink;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warn";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
  }
  return "?";
}

}  // namespace

bool parse_log_level(std::string_view t, LogLevel& out) {
  if (t == "error") out = LogLevel::error;
  else if (t == "warn" || t == "warning") out = LogLevel::warn;
  else if (t == "info") out = LogLevel::info;
  else if (t == "debug") out = LogLevel::debug;
  else return false;
  return true;
}

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }
void set_log_sink(std::function<void(std::string_view)> sink) { g_sink = std::move(sink); }

void log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) > static_cast<int>(g_level)) return;
  std::string line = "kinde-fcgi[" + std::to_string(::getpid()) + "]: " + level_name(level) + ": ";
  line.reserve(line.size() + message.size() + 1);
  // Escape control characters so a hostile value cannot forge log lines.
  for (unsigned char c : message) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      line += buf;
    } else {
      line += static_cast<char>(c);
    }
  }
  line += '\n';
  if (g_sink) {
    g_sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace kinde

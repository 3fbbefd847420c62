// The FastCGI listening socket outside a web server: taken over from systemd socket activation
// (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, the socket at fd 3) and shared by preforked workers.
// libfcgi accepts on fd 0, where mod_fcgid, lighttpd and spawn-fcgi put the socket; FCGX_IsCGI()
// calls a process FastCGI when fd 0 is a listening socket, and decides that once.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kListenFdsInvalid = "listen_fds_invalid";  // error code

// The number of descriptors systemd passed to the process `self`: LISTEN_FDS when LISTEN_PID
// equals self; 0 when either is unset or LISTEN_PID names another process (the variables were
// meant for a parent). Error "listen_fds_invalid" when a value is not a decimal number.
Result<int> listen_fds_count(const std::optional<std::string>& listen_pid,
                             const std::optional<std::string>& listen_fds, pid_t self);

// True when fd is a listening stream socket (what libfcgi serves FastCGI on).
bool is_listening_socket(int fd);

// Socket activation: when systemd passed this process one descriptor, checks that fd 3 is a
// listening stream socket, makes it blocking and moves it to fd 0. Returns true when it did,
// false when nothing was passed. Error "listen_fds_invalid" for anything else (several sockets,
// not a listening socket). Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES in every case.
// Call it before the first FCGX_IsCGI().
Result<bool> adopt_systemd_socket();

// What a process is after run_workers: one of the workers (serve requests on fd 0), or the
// supervisor once every worker has exited after SIGTERM/SIGINT (exit 0).
enum class ProcessRole { worker, supervisor_done };

// Prefork: forks `count` workers that return from this call as ProcessRole::worker, with the
// caller's signal mask. The calling process stays here as their supervisor: it starts a new worker
// when one dies (after a second when it lived less than a second, so a crash loop cannot spin),
// passes SIGTERM and SIGINT on to every worker and returns when all are gone. Workers get SIGTERM
// when the supervisor dies.
ProcessRole run_workers(int count);

}  // namespace kinde

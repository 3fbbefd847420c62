// kinde.fcgi: FastCGI accept loop, or one request as plain CGI; wires the real parts.
#include <fcgiapp.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "app/runtime.hpp"
#include "util/listener.hpp"
#include "util/log.hpp"

extern char** environ;

namespace {

using namespace kinde;

std::optional<std::string> real_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

// Served for every request when the configuration is broken: clear words, no crash loop.
Response misconfigured_response(const std::string&) {
  Response r;
  r.status = 500;
  r.set_header("Content-Type", "text/plain; charset=utf-8");
  r.set_header("Cache-Control", "no-store");
  r.body = "Sign-in is not configured correctly on this site.\n"
           "The administrator can run `kinde.fcgi --check-config` to see what is wrong.\n";
  return r;
}

// SIGTERM/SIGINT (a server stop or reload): finish the request in hand, accept no more, exit
// normally so destructors run. No SA_RESTART: a blocked accept() returns and sees the flag.
void on_terminate(int) { FCGX_ShutdownPending(); }

void install_shutdown_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_terminate;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // mod_fcgid and lighttpd may close the connection while we write: an error, not a death.
  signal(SIGPIPE, SIG_IGN);
}

// After a request that took the heap higher than ever before (in practice a provider call: libcurl
// and its libraries set up, token and key-set answers parsed), give the free pages back to the
// system: they stay private dirty memory of every process otherwise. Page views never raise the
// mark once warm, so they never pay for the trim.
void trim_after_new_high(char*& high) {
  char* top = static_cast<char*>(sbrk(0));
  if (top <= high) return;
  malloc_trim(0);
  high = top;
}

void serve_fcgi(Runtime* rt, const std::string& config_problem) {
  FCGX_Init();
  install_shutdown_handlers();
  FCGX_Request req;
  FCGX_InitRequest(&req, 0, 0);
  FCGX_Stream* current_err = nullptr;
  char* heap_high = static_cast<char*>(sbrk(0));
  set_log_sink([&current_err](std::string_view line) {
    if (current_err) {
      FCGX_PutStr(line.data(), static_cast<int>(line.size()), current_err);
    } else {
      std::fwrite(line.data(), 1, line.size(), stderr);
      std::fflush(stderr);
    }
  });
  while (FCGX_Accept_r(&req) >= 0) {
    current_err = req.err;
    FCGX_Request* r = &req;
    EnvLookup env = [r](const char* name) -> std::optional<std::string> {
      const char* v = FCGX_GetParam(name, r->envp);
      if (!v) return std::nullopt;
      return std::string(v);
    };
    BodyReader body = [r](char* buf, std::size_t n) -> std::size_t {
      int got = FCGX_GetStr(buf, static_cast<int>(n), r->in);
      return got > 0 ? static_cast<std::size_t>(got) : 0;
    };
    Request request = build_request(env, body);
    Response response = rt ? rt->app->handle(request) : misconfigured_response(config_problem);
    std::string out = serialize_cgi(response, request.method == "HEAD");
    FCGX_PutStr(out.data(), static_cast<int>(out.size()), req.out);
    current_err = nullptr;
    FCGX_Finish_r(&req);
    trim_after_new_high(heap_high);
  }
}

void serve_cgi(Runtime* rt, const std::string& config_problem) {
  EnvLookup env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
  BodyReader body = [](char* buf, std::size_t n) -> std::size_t { return std::fread(buf, 1, n, stdin); };
  Request request = build_request(env, body);
  Response response = rt ? rt->app->handle(request) : misconfigured_response(config_problem);
  std::string out = serialize_cgi(response, request.method == "HEAD");
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void usage() {
  std::puts("usage: kinde.fcgi [--workers N | --check-config | --gc-sessions | --help]\n"
            "  Started by a FastCGI server it serves FastCGI; started as CGI it serves one request.\n"
            "  A socket from systemd (LISTEN_FDS) or spawn-fcgi is served like a FastCGI server's.\n"
            "  --workers N     serve with N worker processes (1-256) under one supervisor\n"
            "  --check-config  validate the configuration and reach the provider\n"
            "  --gc-sessions   remove every expired session file (for cron)\n"
            "  Configuration: $KINDE_CONFIG (default etc/kinde.conf), environment overrides.");
}

// "--workers N" or "--workers=N" at argv[i]: the count (1-256), 0 when malformed; advances i past N.
int parse_workers(int argc, char** argv, int& i) {
  std::string arg = argv[i];
  std::string value;
  if (arg.rfind("--workers=", 0) == 0) value = arg.substr(10);
  else if (i + 1 < argc) value = argv[++i];
  if (value.empty() || value.size() > 3 || value.find_first_not_of("0123456789") != std::string::npos) return 0;
  int n = std::stoi(value);
  return n >= 1 && n <= 256 ? n : 0;
}

// The command line: a mode ("" serves, "--check-config", "--gc-sessions") and a worker count.
struct Options {
  std::string mode;
  int workers = 1;
};

// Parses argv; on --help, a mistake or a bad combination returns the exit status to leave with.
std::optional<int> parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if (arg == "--workers" || arg.rfind("--workers=", 0) == 0) {
      o.workers = parse_workers(argc, argv, i);
      if (o.workers == 0) {
        std::fprintf(stderr, "kinde.fcgi: --workers takes a number of processes from 1 to 256\n");
        return 2;
      }
    } else if ((arg == "--check-config" || arg == "--gc-sessions") && o.mode.empty()) {
      o.mode = arg;
    } else {
      std::fprintf(stderr, "kinde.fcgi: unknown option %s\n", arg.c_str());
      usage();
      return 2;
    }
  }
  if (!o.mode.empty() && o.workers != 1) {
    std::fprintf(stderr, "kinde.fcgi: --workers goes with serving, not with %s\n", o.mode.c_str());
    return 2;
  }
  return std::nullopt;
}

// Takes the listening socket from systemd and, with --workers, forks the workers. Returns the exit
// status when this process is done (the supervisor, or a failure); nullopt in a process that serves.
std::optional<int> prepare_listener(int workers) {
  // systemd's socket becomes fd 0 before FCGX_IsCGI() looks there (spawn-fcgi puts it there already).
  auto adopted = adopt_systemd_socket();
  if (!adopted) {
    std::fprintf(stderr, "kinde.fcgi: %s\n", adopted.error().detail.c_str());
    return 1;
  }
  if (workers <= 1) return std::nullopt;
  if (!is_listening_socket(0)) {
    std::fprintf(stderr, "kinde.fcgi: --workers needs a listening socket on fd 0 (from systemd's "
                         "kinde-fcgi.socket or spawn-fcgi); none was passed\n");
    return 2;
  }
  // Each worker loads the configuration itself, so no session store or connection is shared.
  if (run_workers(workers) == ProcessRole::supervisor_done) return 0;
  return std::nullopt;
}

// Each problem on its own line in the error log; requests get a plain 500 page meanwhile.
void log_config_problem(const std::string& problem) {
  std::size_t start = 0;
  while (start <= problem.size()) {
    std::size_t nl = problem.find('\n', start);
    log_error("configuration: " + problem.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

int gc_sessions(Runtime* rt) {
  if (!rt) return 1;
  auto n = rt->sessions->collect_expired(rt->clock.now(), 0);
  if (!n) {
    std::fprintf(stderr, "kinde.fcgi: %s\n", n.error().detail.c_str());
    return 1;
  }
  std::printf("removed %zu expired sessions\n", *n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenSSL without openssl.cnf: parsing it costs about 1.7 M instructions of every CGI request, and
  // session sealing and token signatures need nothing from it. The TLS client loads it before its
  // first connection (src/http/curl_transport.cpp). Nor OpenSSL's ~3,000 error strings, which
  // libcurl's set-up would otherwise load into every process that calls the provider (about 0.1 MB
  // each); a TLS error then reads "error:0A000086:..." with the code to look up.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr);
  Options opt;
  if (auto done = parse_options(argc, argv, opt)) return *done;
  if (opt.mode.empty()) {
    if (auto done = prepare_listener(opt.workers)) return *done;
  }
  EnvGetter env = real_env;
  bool explicit_path = real_env("KINDE_CONFIG").has_value();
  std::string path = default_config_path(env, argv[0]);
  auto config = load_config(path, explicit_path, env);

  if (opt.mode == "--check-config") {
    if (!config) {
      std::printf("FAIL  configuration (%s):\n%s\n", path.c_str(), config.error().detail.c_str());
      return 1;
    }
    std::string out;
    int status = check_config(*config, out);
    std::fputs(out.c_str(), stdout);
    return status;
  }

  const bool serving_cgi = FCGX_IsCGI();  // asked once: a getpeername() on fd 0
  std::string problem;
  std::unique_ptr<Runtime> rt;
  if (!config) {
    problem = config.error().detail;
  } else {
    // A FastCGI process lives on: its provider calls run in a forked child, so libcurl and its
    // libraries never stay in its memory (src/http/forked_transport.hpp).
    const bool long_lived = opt.mode.empty() && !serving_cgi;
    auto built = build_runtime(*config, long_lived);
    if (built) rt = std::move(*built);
    else problem = built.error().detail;
  }
  if (!problem.empty()) log_config_problem(problem);
  if (opt.mode == "--gc-sessions") return gc_sessions(rt.get());

  if (serving_cgi) {
    serve_cgi(rt.get(), problem);
    // One request and the answer is out: skip the destructors and OpenSSL's exit-time clean-up
    // (about 1.2 M instructions, a tenth of a CGI request); the kernel frees it all anyway.
    std::fflush(nullptr);
    _exit(0);
  }
  serve_fcgi(rt.get(), problem);
  return 0;
}

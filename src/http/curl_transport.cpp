#include <curl/curl.h>
#include <dlfcn.h>
#include <openssl/conf.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "http/transport.hpp"
#include "util/log.hpp"

namespace kinde {
namespace {

constexpr std::size_t kMaxBody = 1024 * 1024;  // discovery, JWKS and token answers are small

// libcurl is reached only through these pointers, resolved by dlopen on the first provider call.
// Why: linking -lcurl makes every process (each CGI request, each FastCGI start) map and
// symbol-resolve libcurl's whole dependency tree (gssapi, ldap, nghttp2, ssh, psl, brotli, ...)
// under -z now, although most requests (signed-in pages, the home page, /healthz) never talk to
// the provider. The headers still give the exact types, via decltype, so a signature mismatch is
// a compile error rather than a crash.
struct CurlApi {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_reset) easy_reset = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;  // variadic, as in the library
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

struct Loaded {
  CurlApi api;
  std::string error;  // non-empty when the library or a symbol could not be loaded
};

// dlsym gives a data pointer; memcpy into the function pointer avoids the conditionally-supported
// object-to-function pointer cast.
template <typename Fn>
bool resolve(void* lib, const char* name, Fn& out, std::string& error) {
  void* sym = dlsym(lib, name);
  if (!sym) {
    if (error.empty()) error = std::string("symbol ") + name + " missing";
    return false;
  }
  static_assert(sizeof(Fn) == sizeof(void*), "function and data pointers differ in size");
  std::memcpy(&out, &sym, sizeof out);
  return true;
}

Loaded load_library(const std::string& library) {
  Loaded l;
  // RTLD_LOCAL: curl's symbols stay out of the global namespace. The handle is never closed:
  // libcurl keeps global state (curl_global_init) for the life of the process.
  // Debian's libcurl brings GnuTLS (through librtmp and libldap, never used here), whose load-time
  // set-up also starts p11-kit: about 0.2 MB of private memory in every process that calls the
  // provider. Those libraries initialise GnuTLS themselves if they ever need it.
  setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    l.error = library + " could not be loaded: " + (why ? why : "unknown error");
    return l;
  }
  std::string missing;
  CurlApi& a = l.api;
  bool ok = resolve(lib, "curl_global_init", a.global_init, missing) &
            resolve(lib, "curl_easy_init", a.easy_init, missing) &
            resolve(lib, "curl_easy_reset", a.easy_reset, missing) &
            resolve(lib, "curl_easy_setopt", a.easy_setopt, missing) &
            resolve(lib, "curl_easy_perform", a.easy_perform, missing) &
            resolve(lib, "curl_easy_getinfo", a.easy_getinfo, missing) &
            resolve(lib, "curl_easy_strerror", a.easy_strerror, missing) &
            resolve(lib, "curl_easy_cleanup", a.easy_cleanup, missing) &
            resolve(lib, "curl_slist_append", a.slist_append, missing) &
            resolve(lib, "curl_slist_free_all", a.slist_free_all, missing);
  if (!ok) {
    l.error = library + " could not be loaded: " + missing;
    return l;
  }
  // main() starts OpenSSL without openssl.cnf (a start-up cost no page view needs); TLS to the
  // provider gets the system's settings (minimum protocol, security level) loaded here, first.
  OPENSSL_load_builtin_modules();
  if (CONF_modules_load_file(nullptr, nullptr, CONF_MFLAGS_IGNORE_MISSING_FILE) <= 0)
    log_warn("OpenSSL's configuration file could not be loaded; TLS uses OpenSSL's defaults");
  if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) l.error = library + " could not be loaded: curl_global_init failed";
  return l;
}

// One load attempt per library name per process (a failure is remembered too: retrying dlopen
// on every request would not make a missing library appear).
const Loaded& loaded(const std::string& library) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[library];
  if (!slot) slot = std::make_unique<Loaded>(load_library(library));
  return *slot;
}

struct Sink {
  HttpResponse* res;
  bool overflow = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::size_t len = size * n;
  if (sink->res->body.size() + len > kMaxBody) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->res->body.append(data, len);
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* res = static_cast<HttpResponse*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t");
    auto e = value.find_last_not_of(" \t\r\n");
    res->headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

struct SlistFree {
  decltype(&::curl_slist_free_all) free_all;
  void operator()(curl_slist* l) const { free_all(l); }
};

}  // namespace

CurlTransport::CurlTransport(std::string library) : library_(std::move(library)), api_(nullptr), handle_(nullptr) {}

CurlTransport::~CurlTransport() {
  if (handle_) static_cast<const CurlApi*>(api_)->easy_cleanup(static_cast<CURL*>(handle_));
}

Result<HttpResponse> CurlTransport::perform(const HttpRequest& request) {
  if (!api_) {
    const Loaded& l = loaded(library_);
    if (!l.error.empty()) return make_error(kHttpFailed, l.error);
    api_ = &l.api;
  }
  const CurlApi& curl = *static_cast<const CurlApi*>(api_);
  if (!handle_) handle_ = curl.easy_init();
  CURL* h = static_cast<CURL*>(handle_);
  if (!h) return make_error(kHttpFailed, "libcurl could not be initialised");
  curl.easy_reset(h);
  HttpResponse res;
  Sink sink{&res};
  std::unique_ptr<curl_slist, SlistFree> headers(nullptr, SlistFree{curl.slist_free_all});
  for (const auto& [k, v] : request.headers) {
    std::string line = k;
    line += ": ";
    line += v;
    headers.reset(curl.slist_append(headers.release(), line.c_str()));
  }
  auto setopt = curl.easy_setopt;
  setopt(h, CURLOPT_URL, request.url.c_str());
  setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  setopt(h, CURLOPT_NOSIGNAL, 1L);
  setopt(h, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  setopt(h, CURLOPT_TIMEOUT_MS, request.total_timeout_ms);
  setopt(h, CURLOPT_USERAGENT, "kinde-fcgi/1.0");
  // Callbacks go through varargs: pass them as the exact pointer types libcurl expects.
  setopt(h, CURLOPT_WRITEFUNCTION, static_cast<curl_write_callback>(on_body));
  setopt(h, CURLOPT_WRITEDATA, static_cast<void*>(&sink));
  setopt(h, CURLOPT_HEADERFUNCTION, static_cast<curl_write_callback>(on_header));
  setopt(h, CURLOPT_HEADERDATA, static_cast<void*>(&res));
  if (headers) setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "POST") {
    setopt(h, CURLOPT_POST, 1L);
    setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  CURLcode rc = curl.easy_perform(h);
  if (rc != CURLE_OK) {
    std::string what = curl.easy_strerror(rc);
    if (sink.overflow) return make_error(kHttpFailed, "response larger than 1 MiB from " + request.url);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT: return make_error(kHttpTimeout, what + " (" + request.url + ")");
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST: return make_error(kHttpConnect, what + " (" + request.url + ")");
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION: return make_error(kHttpTls, what + " (" + request.url + ")");
      default: return make_error(kHttpFailed, what + " (" + request.url + ")");
    }
  }
  curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace kinde

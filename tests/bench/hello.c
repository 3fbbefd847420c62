/* The FastCGI ceiling for `make bench`: a bare libfcgi responder that answers every request with a
 * fixed "Hello, world!" page. It does no parsing and no allocation per request, so lighttpd ->
 * hello.fcgi measures only the web server, the unix socket and libfcgi's framing. */
#include <fcgiapp.h>

#include <stddef.h>

int main(void) {
  static const char response[] =
      "Status: 200 OK\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 14\r\n"
      "\r\n"
      "Hello, world!\n";
  FCGX_Request req;
  if (FCGX_Init() != 0) return 1;
  if (FCGX_InitRequest(&req, 0, 0) != 0) return 1;
  while (FCGX_Accept_r(&req) >= 0) {
    FCGX_PutStr(response, (int)(sizeof response - 1), req.out);
    FCGX_Finish_r(&req);
  }
  return 0;
}

/* The plain-CGI ceiling for `make bench`: a C CGI program that prints a fixed page and exits. The
 * app run as CGI is compared with this (process start, dynamic linking and exit included in both). */
#include <stdio.h>

int main(void) {
  fputs("Status: 200 OK\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 14\r\n"
        "\r\n"
        "Hello, world!\n",
        stdout);
  return 0;
}

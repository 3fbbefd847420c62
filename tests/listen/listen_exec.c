/* listen_exec: start a program the way systemd starts the service of a .socket unit (Accept=no),
 * without systemd. Used by the tests (tests/integration/process_model.test.mjs) and by the package
 * test (scripts/deb/test.sh).
 *
 *   listen_exec [--mode OCTAL] [--owner UID:GID] [--listen-pid PID] SOCKET -- COMMAND [ARG...]
 *
 * Creates a unix stream socket at SOCKET (a stale socket there is removed), gives it the mode
 * (default 0600) and owner, listens, puts it at fd 3 (SD_LISTEN_FDS_START), sets LISTEN_FDS=1,
 * LISTEN_FDNAMES and LISTEN_PID to this process's id (kept across exec), and execs COMMAND.
 * --listen-pid sets another LISTEN_PID: the socket is then meant for someone else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "listen_exec: %s: %s\n", what, strerror(errno));
  exit(111);
}

static void usage(void) {
  fprintf(stderr, "usage: listen_exec [--mode OCTAL] [--owner UID:GID] [--listen-pid PID] SOCKET -- COMMAND [ARG...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  mode_t mode = 0600;
  long uid = -1, gid = -1;
  const char *listen_pid = NULL;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--") != 0; i += 2) {
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--mode") == 0) mode = (mode_t)strtol(argv[i + 1], NULL, 8);
    else if (strcmp(argv[i], "--owner") == 0) {
      if (sscanf(argv[i + 1], "%ld:%ld", &uid, &gid) != 2) usage();
    } else if (strcmp(argv[i], "--listen-pid") == 0) listen_pid = argv[i + 1];
    else usage();
  }
  if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) usage();
  const char *path = argv[i];
  char **command = argv + i + 2;

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    fprintf(stderr, "listen_exec: socket path too long: %s\n", path);
    return 2;
  }
  strcpy(addr.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);

  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
  if (chmod(path, mode) != 0) die("chmod");
  if (uid >= 0 && chown(path, (uid_t)uid, (gid_t)gid) != 0) die("chown");
  if (listen(fd, 128) != 0) die("listen");
  if (fd != 3) {
    if (dup2(fd, 3) != 3) die("dup2");
    close(fd);
  }

  char pid[32];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_FDNAMES", "listen_exec", 1);
  setenv("LISTEN_PID", listen_pid ? listen_pid : pid, 1);
  execvp(command[0], command);
  die(command[0]);
  return 111;
}

/* cgi_time: wall time of plain CGI runs, start to exit, for `make bench`.
 *
 *   cgi_time RUNS OUTDIR ENVFILE1 PROGRAM1 [ENVFILE2 PROGRAM2 ...]
 *
 * Each ENVFILE holds the whole environment of its program, one NAME=value per line. The programs
 * run round-robin (interleaved, so machine noise hits them alike), RUNS times each, stdin from
 * /dev/null, stdout into OUTDIR/out<i>.txt (overwritten each run, so the runner can check the last
 * answer), stderr into OUTDIR/err<i>.txt. Prints one JSON object per program on stdout:
 *   {"program": ..., "runs": N, "median_us": ..., "p10_us": ..., "p90_us": ..., "failures": K}
 * where a failure is a non-zero exit or a signal. Timing is fork to waitpid on CLOCK_MONOTONIC:
 * the same work a web server does for one CGI request, minus its own parsing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PROGRAMS = 8, MAX_VARS = 256 };

struct program {
  const char *path;
  char *env[MAX_VARS + 1];
  double *samples;
  int failures;
  char out[4096];
  char err[4096];
};

static int load_env(const char *file, char **env) {
  FILE *f = fopen(file, "r");
  if (!f) {
    perror(file);
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int n = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (len == 0 || strchr(line, '=') == NULL) continue;
    if (n == MAX_VARS) {
      fprintf(stderr, "%s: more than %d variables\n", file, MAX_VARS);
      fclose(f);
      free(line);
      return -1;
    }
    env[n++] = strdup(line);
  }
  env[n] = NULL;
  free(line);
  fclose(f);
  return 0;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One run: returns the elapsed microseconds, or a negative number when the program failed. */
static double run_once(struct program *p) {
  double start = now_us();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return -1;
  }
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    char *argv[] = {(char *)p->path, NULL};
    execve(p->path, argv, p->env);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("waitpid");
      return -1;
    }
  }
  double elapsed = now_us() - start;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return elapsed;
}

int main(int argc, char **argv) {
  if (argc < 5 || (argc - 3) % 2 != 0 || (argc - 3) / 2 > MAX_PROGRAMS) {
    fprintf(stderr, "usage: cgi_time RUNS OUTDIR ENVFILE PROGRAM [ENVFILE PROGRAM ...]\n");
    return 2;
  }
  int runs = atoi(argv[1]);
  if (runs < 1 || runs > 100000) {
    fprintf(stderr, "cgi_time: RUNS must be 1..100000\n");
    return 2;
  }
  int count = (argc - 3) / 2;
  static struct program progs[MAX_PROGRAMS];
  for (int i = 0; i < count; ++i) {
    struct program *p = &progs[i];
    p->path = argv[4 + 2 * i];
    if (load_env(argv[3 + 2 * i], p->env) != 0) return 1;
    p->samples = calloc((size_t)runs, sizeof(double));
    if (!p->samples) return 1;
    snprintf(p->out, sizeof p->out, "%s/out%d.txt", argv[2], i + 1);
    snprintf(p->err, sizeof p->err, "%s/err%d.txt", argv[2], i + 1);
  }
  int got[MAX_PROGRAMS] = {0};
  for (int r = 0; r < runs; ++r) {
    for (int i = 0; i < count; ++i) {
      double t = run_once(&progs[i]);
      if (t < 0) progs[i].failures++;
      else progs[i].samples[got[i]++] = t;
    }
  }
  for (int i = 0; i < count; ++i) {
    struct program *p = &progs[i];
    int n = got[i];
    qsort(p->samples, (size_t)n, sizeof(double), cmp_double);
    double median = n ? (n % 2 ? p->samples[n / 2] : (p->samples[n / 2 - 1] + p->samples[n / 2]) / 2) : -1;
    double p10 = n ? p->samples[(n - 1) / 10] : -1;
    double p90 = n ? p->samples[(n - 1) * 9 / 10] : -1;
    printf("{\"program\":\"%s\",\"runs\":%d,\"median_us\":%.1f,\"p10_us\":%.1f,\"p90_us\":%.1f,\"failures\":%d}\n",
           p->path, n, median, p10, p90, p->failures);
  }
  return 0;
}

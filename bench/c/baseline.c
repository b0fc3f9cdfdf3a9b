/*
 * The C baseline for `deno task bench`: the same workloads as bench/js/sync.ts,
 * calling libpam directly, so the ratios show what the binding adds on top of
 * libpam's own cost (reading the service file, loading and running modules).
 *
 *   baseline KIND ITERATIONS WARMUP CONFDIR SERVICE USER PASSWORD PARALLEL
 *
 * KIND: full | auth | auth-silent | oneshot (see bench/workloads.ts).
 * PARALLEL > 1 runs KIND on that many threads, one handle per thread, each
 * thread doing its share of ITERATIONS transactions (the C model of "N in flight").
 * Prints one JSON line: {"n","seconds","usPerTx","cpuUsPerTx","messagesPerTx","peakRssKiB",
 * "rssKiB"}; wall-clock and CPU time (all threads) cover the timed loop only.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct job {
  const char *kind, *confdir, *service, *user, *password;
  long iterations;
  long messages; /* info/error messages seen, to check the workload matches the JS one */
  int failed;
};

static int converse(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
  struct job *job = data;
  struct pam_response *r = calloc((size_t)n, sizeof *r);
  if (!r) return PAM_BUF_ERR;
  for (int i = 0; i < n; i++) {
    switch (msg[i]->msg_style) {
    case PAM_PROMPT_ECHO_OFF:
      r[i].resp = strdup(job->password);
      break;
    case PAM_ERROR_MSG:
    case PAM_TEXT_INFO:
      job->messages++;
      break;
    default:
      free(r);
      return PAM_CONV_ERR;
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

static int check(int status, const char *what, struct job *job) {
  if (status != PAM_SUCCESS) {
    fprintf(stderr, "baseline: %s failed: %d\n", what, status);
    job->failed = 1;
  }
  return status;
}

static void one(struct job *job) {
  struct pam_conv conv = {converse, job};
  pam_handle_t *h = NULL;
  /* CONFDIR "-": plain pam_start, reading /etc/pam.d (the authenticate-pam comparison). */
  int s = strcmp(job->confdir, "-")
              ? pam_start_confdir(job->service, job->user, &conv, job->confdir, &h)
              : pam_start(job->service, job->user, &conv, &h);
  if (check(s, "pam_start_confdir", job) != PAM_SUCCESS) return;
  const char *k = job->kind;
  if (!strcmp(k, "full")) {
    if ((s = check(pam_authenticate(h, 0), "pam_authenticate", job)) == PAM_SUCCESS &&
        (s = check(pam_acct_mgmt(h, 0), "pam_acct_mgmt", job)) == PAM_SUCCESS &&
        (s = check(pam_open_session(h, 0), "pam_open_session", job)) == PAM_SUCCESS)
      s = check(pam_close_session(h, 0), "pam_close_session", job);
  } else if (!strcmp(k, "auth")) {
    s = check(pam_authenticate(h, 0), "pam_authenticate", job);
  } else if (!strcmp(k, "auth-silent")) {
    s = check(pam_authenticate(h, PAM_SILENT), "pam_authenticate", job);
  } else if (!strcmp(k, "oneshot")) {
    if ((s = check(pam_authenticate(h, 0), "pam_authenticate", job)) == PAM_SUCCESS)
      s = check(pam_acct_mgmt(h, 0), "pam_acct_mgmt", job);
  } else {
    fprintf(stderr, "baseline: unknown kind %s\n", k);
    job->failed = 1;
  }
  pam_end(h, s);
}

static void *run(void *arg) {
  struct job *job = arg;
  for (long i = 0; i < job->iterations && !job->failed; i++) one(job);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* User + system CPU seconds of the whole process (all threads), as process.cpuUsage() gives. */
static double cpu(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         (double)u.ru_stime.tv_usec / 1e6;
}

static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long value = -1;
  size_t len = strlen(field);
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, field, len) && line[len] == ':') {
      value = strtol(line + len + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return value;
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: %s KIND ITERATIONS WARMUP CONFDIR SERVICE USER PASSWORD PARALLEL\n",
            argv[0]);
    return 2;
  }
  long iterations = atol(argv[2]), warmup = atol(argv[3]);
  int parallel = atoi(argv[8]);
  if (parallel < 1) parallel = 1;
  struct job base = {argv[1], argv[4], argv[5], argv[6], argv[7], warmup, 0, 0};

  run(&base); /* warm-up: page in libpam, the modules, the service file */
  if (base.failed) return 1;

  struct job *jobs = calloc((size_t)parallel, sizeof *jobs);
  pthread_t *threads = calloc((size_t)parallel, sizeof *threads);
  for (int t = 0; t < parallel; t++) {
    jobs[t] = base;
    jobs[t].iterations = iterations / parallel + (t < iterations % parallel);
    jobs[t].messages = 0;
  }
  double start = now(), cpu_start = cpu();
  if (parallel == 1) {
    run(&jobs[0]);
  } else {
    for (int t = 0; t < parallel; t++) pthread_create(&threads[t], NULL, run, &jobs[t]);
    for (int t = 0; t < parallel; t++) pthread_join(threads[t], NULL);
  }
  double seconds = now() - start, cpu_seconds = cpu() - cpu_start;
  long n = iterations, messages = 0;
  for (int t = 0; t < parallel; t++) {
    if (jobs[t].failed) return 1;
    messages += jobs[t].messages;
  }
  printf("{\"n\":%ld,\"seconds\":%.6f,\"usPerTx\":%.3f,\"cpuUsPerTx\":%.3f,"
         "\"messagesPerTx\":%.3f,\"peakRssKiB\":%ld,\"rssKiB\":%ld}\n",
         n, seconds, seconds * 1e6 / (double)n, cpu_seconds * 1e6 / (double)n,
         (double)messages / (double)n,
         status_kib("VmHWM"), status_kib("VmRSS"));
  return 0;
}

/*
 * The C baseline for `deno task bench`: the same workloads as bench/js/sync.ts,
 * calling libpam directly, so the ratios show what the binding adds on top of
 * libpam's own cost (reading the service file, loading and running modules).
 *
 *   baseline KIND ITERATIONS WARMUP CONFDIR SERVICE USER PASSWORD PARALLEL
 *
 * KIND: full | auth | auth-silent | auth-paired | oneshot (rows in bench/main.ts; auth only
 * as half of auth-paired) | handoff (no PAM: two threads hand a word back and forth through a
 * futex, ITERATIONS round trips; the cheapest thread hop this machine allows, the floor of
 * the async API's one-at-a-time row).
 * PARALLEL > 1 runs KIND on that many threads, one handle per thread, each
 * thread doing its share of ITERATIONS transactions (the C model of "N in flight").
 * Prints one JSON line: {"n","seconds","usPerTx","cpuUsPerTx","quietUsPerTx","messagesPerTx",
 * "peakRssKiB","rssKiB"}; wall-clock and CPU time (all threads) cover the timed loop only;
 * quietUsPerTx is the fastest tenth of its slices of 100 transactions (see tick()).
 *
 * SEED_PAM_BENCH_SIBLING=busy|waking|idle adds one more thread that does no PAM work: "busy"
 * spins on the other core, "waking" sleeps 100 µs at a time, "idle" blocks for the whole run.
 * It shows what running libpam in a process with other threads costs. While they run, every
 * munmap of the modules' dlclose must also flush the other core's TLB (an inter-processor
 * interrupt, dear on a VM); and even while they never run, glibc and the kernel leave their
 * single-threaded fast paths (malloc without locks, fdget without a reference count, no
 * cancellation points). A JavaScript runtime always has such threads (its JIT, its collector,
 * the async API's main thread). CPU time then counts the working thread only.
 *
 * SEED_PAM_BENCH_KEEP_MODULES=1 holds one more handle of SERVICE open for the whole run, as
 * keepModulesLoaded() does: the modules stay loaded, so each pam_start's dlopen only counts.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * The slice clock (as bench/js/common.ts's): the time at every SLICE-th transaction completed
 * in the timed loop, by whichever thread completes it, so that the fastest slices can be told
 * from the ones another tenant of the machine slowed down.
 */
#define SLICE 100
static double *marks;
static long completed;

static void tick(void) {
  if (!marks) return;
  long c = __atomic_add_fetch(&completed, 1, __ATOMIC_SEQ_CST);
  if (c % SLICE == 0) marks[c / SLICE] = now();
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* µs per transaction of the fastest tenth of the slices (NAN when there are none). */
static double quiet_us(long iterations) {
  long slices = iterations / SLICE;
  if (slices < 1) return NAN;
  double *us = calloc((size_t)slices, sizeof *us);
  for (long i = 0; i < slices; i++) us[i] = (marks[i + 1] - marks[i]) * 1e6 / SLICE;
  qsort(us, (size_t)slices, sizeof *us, by_value);
  double quiet = us[slices / 10];
  free(us);
  return quiet;
}

static void *run(void *arg) {
  struct job *job = arg;
  for (long i = 0; i < job->iterations && !job->failed; i++) {
    one(job);
    tick();
  }
  return NULL;
}

static int sibling_running;

/*
 * User + system CPU seconds of the whole process (all threads), as process.cpuUsage() gives;
 * with a sibling thread (one PAM thread then, see main), of the PAM thread only.
 */
static double cpu(void) {
  struct rusage u;
  getrusage(sibling_running ? RUSAGE_THREAD : RUSAGE_SELF, &u);
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

/*
 * KIND auth-paired: "auth" and "auth-silent" in alternating slices of 50 transactions in
 * this one process, each timed on its own, so that their difference (what the messages
 * cost) is not buried under the few percent two processes differ by; which half goes first
 * alternates, so neither always pays for what the other left behind. Reports "auth" as
 * usPerTx and "auth-silent" as silentUsPerTx. base->iterations is the warm-up of each half.
 */
static int run_paired(const struct job *base, long iterations) {
  struct job loud = *base, quiet = *base;
  loud.kind = "auth";
  quiet.kind = "auth-silent";
  run(&loud);
  run(&quiet);
  loud.messages = 0;
  double loud_s = 0, quiet_s = 0, loud_cpu = 0, quiet_cpu = 0;
  for (long done = 0, turn = 0; done < iterations; done += 50, turn++) {
    long n = iterations - done < 50 ? iterations - done : 50;
    loud.iterations = quiet.iterations = n;
    for (int k = 0; k < 2; k++) {
      int is_loud = (k == 0) == (turn % 2 == 0);
      double t = now(), c = cpu();
      run(is_loud ? &loud : &quiet);
      *(is_loud ? &loud_s : &quiet_s) += now() - t;
      *(is_loud ? &loud_cpu : &quiet_cpu) += cpu() - c;
    }
    if (loud.failed || quiet.failed) return 1;
  }
  double n = (double)iterations;
  printf("{\"n\":%ld,\"seconds\":%.6f,\"usPerTx\":%.3f,\"cpuUsPerTx\":%.3f,"
         "\"silentUsPerTx\":%.3f,\"silentCpuUsPerTx\":%.3f,"
         "\"messagesPerTx\":%.3f,\"peakRssKiB\":%ld,\"rssKiB\":%ld}\n",
         iterations, loud_s, loud_s * 1e6 / n, loud_cpu * 1e6 / n, quiet_s * 1e6 / n,
         quiet_cpu * 1e6 / n, (double)loud.messages / n, status_kib("VmHWM"),
         status_kib("VmRSS"));
  return 0;
}

/* KIND handoff: the word two threads pass back and forth (0: the worker's turn, 1: main's). */
static int handoff_word;
static long handoff_rounds;
/*
 * How long each side works before it hands the word back: long enough for the other thread
 * to be asleep in the kernel when it is woken (as the async API's main thread is while a
 * worker runs libpam), so that each hop is a real wake-up. Subtracted from the result.
 */
#define HANDOFF_WORK_US 100

static void work(double us) {
  double until = now() + us / 1e6;
  while (now() < until) __asm__ volatile("" ::: "memory");
}

static void futex_wait(int *word, int value) {
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(int *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *handoff_peer(void *unused) {
  (void)unused;
  for (long i = 0; i < handoff_rounds; i++) {
    while (__atomic_load_n(&handoff_word, __ATOMIC_ACQUIRE) != 0) futex_wait(&handoff_word, 1);
    work(HANDOFF_WORK_US);
    __atomic_store_n(&handoff_word, 1, __ATOMIC_RELEASE);
    futex_wake(&handoff_word);
  }
  return NULL;
}

/* Round trips main -> peer -> main; returns seconds for `rounds` of them. */
static double handoff(long rounds) {
  pthread_t peer;
  handoff_rounds = rounds;
  handoff_word = 1;
  pthread_create(&peer, NULL, handoff_peer, NULL);
  double start = now();
  for (long i = 0; i < rounds; i++) {
    __atomic_store_n(&handoff_word, 0, __ATOMIC_RELEASE);
    futex_wake(&handoff_word);
    while (__atomic_load_n(&handoff_word, __ATOMIC_ACQUIRE) != 1) futex_wait(&handoff_word, 0);
    work(HANDOFF_WORK_US);
  }
  double seconds = now() - start - 2 * rounds * HANDOFF_WORK_US / 1e6;
  pthread_join(peer, NULL);
  return seconds;
}

static volatile int sibling_stop;

static void *busy_sibling(void *unused) {
  (void)unused;
  while (!sibling_stop) __asm__ volatile("" ::: "memory");
  return NULL;
}

static void *waking_sibling(void *unused) {
  (void)unused;
  struct timespec pause = {0, 100000};
  while (!sibling_stop) nanosleep(&pause, NULL);
  return NULL;
}

/* Blocked for the whole run: the process is multi-threaded, yet no second thread ever runs. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_wake = PTHREAD_COND_INITIALIZER;

static void *idle_sibling(void *unused) {
  (void)unused;
  pthread_mutex_lock(&idle_lock);
  while (!sibling_stop) pthread_cond_wait(&idle_wake, &idle_lock);
  pthread_mutex_unlock(&idle_lock);
  return NULL;
}

static void stop_sibling(pthread_t thread) {
  pthread_mutex_lock(&idle_lock);
  sibling_stop = 1;
  pthread_cond_signal(&idle_wake);
  pthread_mutex_unlock(&idle_lock);
  pthread_join(thread, NULL);
}

/* Starts the SEED_PAM_BENCH_SIBLING thread, if asked for; returns 1 when one runs. */
static int start_sibling(pthread_t *thread) {
  const char *kind = getenv("SEED_PAM_BENCH_SIBLING");
  if (!kind || !*kind) return 0;
  void *(*body)(void *) = strcmp(kind, "busy") == 0     ? busy_sibling
                          : strcmp(kind, "waking") == 0 ? waking_sibling
                          : strcmp(kind, "idle") == 0   ? idle_sibling
                                                        : NULL;
  if (!body) {
    fprintf(stderr, "baseline: SEED_PAM_BENCH_SIBLING is busy, waking or idle, not %s\n", kind);
    exit(2);
  }
  return pthread_create(thread, NULL, body, NULL) == 0;
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

  pthread_t sibling;
  sibling_running = start_sibling(&sibling);
  if (sibling_running && parallel > 1) {
    /* cpu() would then count the main thread only, which just waits for the others. */
    fprintf(stderr, "baseline: SEED_PAM_BENCH_SIBLING needs PARALLEL 1\n");
    return 2;
  }
  const char *keep = getenv("SEED_PAM_BENCH_KEEP_MODULES");
  if (keep && *keep) {
    /* Never ended: the process exits with it. No module function runs on it. */
    static struct pam_conv anchor_conv = {converse, NULL};
    pam_handle_t *anchor = NULL;
    int s = strcmp(base.confdir, "-")
                ? pam_start_confdir(base.service, NULL, &anchor_conv, base.confdir, &anchor)
                : pam_start(base.service, NULL, &anchor_conv, &anchor);
    if (check(s, "pam_start (keep modules)", &base) != PAM_SUCCESS) return 1;
  }
  if (!strcmp(base.kind, "auth-paired")) return run_paired(&base, iterations);
  if (!strcmp(base.kind, "handoff")) {
    handoff(warmup);
    double c = cpu(), seconds = handoff(iterations);
    printf("{\"n\":%ld,\"seconds\":%.6f,\"usPerTx\":%.3f,\"cpuUsPerTx\":%.3f,"
           "\"messagesPerTx\":0,\"peakRssKiB\":%ld,\"rssKiB\":%ld}\n",
           iterations, seconds, seconds * 1e6 / (double)iterations,
           (cpu() - c) * 1e6 / (double)iterations, status_kib("VmHWM"), status_kib("VmRSS"));
    return 0;
  }
  run(&base); /* warm-up: page in libpam, the modules, the service file */
  if (base.failed) return 1;

  struct job *jobs = calloc((size_t)parallel, sizeof *jobs);
  pthread_t *threads = calloc((size_t)parallel, sizeof *threads);
  for (int t = 0; t < parallel; t++) {
    jobs[t] = base;
    jobs[t].iterations = iterations / parallel + (t < iterations % parallel);
    jobs[t].messages = 0;
  }
  marks = calloc((size_t)(iterations / SLICE + 1), sizeof *marks);
  double start = now(), cpu_start = cpu();
  marks[0] = start;
  if (parallel == 1) {
    run(&jobs[0]);
  } else {
    for (int t = 0; t < parallel; t++) pthread_create(&threads[t], NULL, run, &jobs[t]);
    for (int t = 0; t < parallel; t++) pthread_join(threads[t], NULL);
  }
  double seconds = now() - start, cpu_seconds = cpu() - cpu_start;
  if (sibling_running) {
    stop_sibling(sibling);
  }
  long n = iterations, messages = 0;
  for (int t = 0; t < parallel; t++) {
    if (jobs[t].failed) return 1;
    messages += jobs[t].messages;
  }
  /* Fewer than one slice: no quiet figure, as the JavaScript runners leave it out. */
  double quiet = quiet_us(n);
  char quiet_field[48] = "";
  if (!isnan(quiet)) snprintf(quiet_field, sizeof quiet_field, "\"quietUsPerTx\":%.3f,", quiet);
  printf("{\"n\":%ld,\"seconds\":%.6f,\"usPerTx\":%.3f,\"cpuUsPerTx\":%.3f,"
         "%s\"messagesPerTx\":%.3f,\"peakRssKiB\":%ld,\"rssKiB\":%ld}\n",
         n, seconds, seconds * 1e6 / (double)n, cpu_seconds * 1e6 / (double)n, quiet_field,
         (double)messages / (double)n, status_kib("VmHWM"), status_kib("VmRSS"));
  return 0;
}

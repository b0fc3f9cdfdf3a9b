// The session-process runner of `deno task bench --sessions`, run under Deno or Bun:
//   sessions.ts latency ROUNDS   login() + close(), session process vs inProcess (ms each)
//   sessions.ts lag PARALLEL     the caller's worst timer lag while PARALLEL logins open, and while
//                                they close; how long its main thread ran and waited for a CPU
//   sessions.ts memory COUNT     COUNT open sessions: each process's RSS, PSS and anonymous memory,
//                                and what the machine's MemAvailable lost per session
// Prints one JSON object.
import { readFileSync } from "node:fs";
import process from "node:process";
import { login, type LoginSession } from "../../mod.ts";
import { createTestStack } from "../../src/testing.ts";
import { median } from "./common.ts";

const [mode, countArg] = process.argv.slice(2);
const count = Number(countArg);
const stack = createTestStack({
  services: {
    app: "auth required pam_permit.so\naccount required pam_permit.so\n" +
      "session required pam_umask.so umask=0077\nsession required pam_permit.so\n",
  },
});
const me = readFileSync("/proc/self/status", "utf8").match(/^Uid:\s*(\d+)/m)![1] === "0"
  ? "root"
  : process.env.USER ?? "root";
const options = { service: "app", user: me, confdir: stack.confdir, utmp: false as const };

async function latency(rounds: number) {
  const out: Record<string, number> = {};
  for (const inProcess of [false, true]) {
    const times: number[] = [];
    for (let i = 0; i < rounds + 3; i++) {
      const t = performance.now();
      const session = await login({ ...options, inProcess });
      await session.close();
      if (i >= 3) times.push(performance.now() - t);
    }
    out[inProcess ? "inProcessMs" : "sessionProcessMs"] = median(times);
  }
  return out;
}

/** The caller's main thread: ms it ran, and ms it was ready to run but waited for a CPU. */
function schedstat(): { run: number; wait: number } {
  const [run, wait] = readFileSync("/proc/thread-self/schedstat", "utf8").split(" ").map(Number);
  return { run: run / 1e6, wait: wait / 1e6 };
}

async function lag(parallel: number) {
  let phase: "open" | "close" = "open";
  const worst = { open: 0, close: 0 };
  // Over the ticks later than 10 ms: how long the main thread ran in them, and how long it
  // waited for a CPU (descheduled, not busy).
  const late = { count: 0, ms: 0, runMs: 0, waitMs: 0 };
  let last = performance.now();
  let lastSched = schedstat();
  const timer = setInterval(() => {
    const now = performance.now();
    const sched = schedstat();
    const lag = now - last - 5;
    worst[phase] = Math.max(worst[phase], lag);
    if (lag > 10) {
      late.count++;
      late.ms += lag;
      late.runMs += sched.run - lastSched.run;
      late.waitMs += sched.wait - lastSched.wait;
    }
    last = now;
    lastSched = sched;
  }, 5);
  const t = performance.now();
  const start = schedstat();
  const sessions = await Promise.all(Array.from({ length: parallel }, () => login(options)));
  const openMs = performance.now() - t;
  const opened = schedstat();
  phase = "close";
  await Promise.all(sessions.map((s) => s.close()));
  clearInterval(timer);
  return {
    worstLagMs: Math.max(worst.open, worst.close),
    worstOpenLagMs: worst.open,
    worstCloseLagMs: worst.close,
    openMs,
    // The main thread while the logins opened: CPU time, and time spent waiting for a CPU.
    openRunMs: opened.run - start.run,
    openWaitMs: opened.wait - start.wait,
    lateTicks: late.count,
    lateRunMs: late.runMs,
    lateWaitMs: late.waitMs,
  };
}

function kib(text: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s*(\\d+)`, "m").exec(text)?.[1] ?? NaN);
}

async function memory(n: number) {
  const available = () => kib(readFileSync("/proc/meminfo", "utf8"), "MemAvailable");
  const before = available();
  const t = performance.now();
  const sessions: LoginSession[] = [];
  // 20 at a time, as a busy server would see them arrive.
  while (sessions.length < n) {
    const batch = Math.min(20, n - sessions.length);
    sessions.push(...await Promise.all(Array.from({ length: batch }, () => login(options))));
  }
  const openMs = performance.now() - t;
  // Idle: by now each session process has dropped its borrowed file pages twice (after 1 s and
  // 3 s of idleness, src/session/_main.ts), as it would sit between a user's keystrokes.
  await new Promise((r) => setTimeout(r, 5000));
  const sample = sessions.slice(0, 10).map((s) => {
    const status = readFileSync(`/proc/${s.pid}/status`, "utf8");
    const smaps = readFileSync(`/proc/${s.pid}/smaps_rollup`, "utf8");
    return { rss: kib(status, "VmRSS"), anon: kib(status, "RssAnon"), pss: kib(smaps, "Pss") };
  });
  const after = available();
  const alive = sessions.filter((s) => {
    try {
      process.kill(s.pid, 0);
      return true;
    } catch {
      return false;
    }
  }).length;
  const c = performance.now();
  await Promise.all(sessions.map((s) => s.close()));
  const closeMs = performance.now() - c;
  const avg = (k: "rss" | "anon" | "pss") =>
    sample.reduce((a, x) => a + x[k], 0) / sample.length / 1024;
  return {
    sessions: n,
    alive,
    openMs,
    closeMs,
    rssMiB: avg("rss"),
    pssMiB: avg("pss"),
    anonMiB: avg("anon"),
    machineMiBPerSession: (before - after) / 1024 / n,
  };
}

const result = mode === "latency"
  ? await latency(count || 30)
  : mode === "lag"
  ? await lag(count || 20)
  : await memory(count || 200);
stack.remove();
console.log(JSON.stringify(result));

// utmp/wtmp records: entries encoded and decoded, and entries the system's own tools (who,
// last) read back. The struct's layout is checked against <utmpx.h> in c_layouts.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  addressOfHost,
  appendWtmpx,
  clearUtmpx,
  decodeUtmpx,
  encodeUtmpx,
  ensureWritable,
  idOfLine,
  lineOfTty,
  putUtmpx,
  readUtmpxFile,
  UtmpType,
} from "../src/session/_utmp.ts";

function tempDir(): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), "seed-pam-utmp-"));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

test("utmpx entries encode and decode, strings cut only between characters", () => {
  const entry = {
    type: UtmpType.USER_PROCESS,
    pid: 4242,
    line: "pts/7",
    id: "ts/7",
    user: "ünïcødé-user-with-a-very-long-name",
    host: "203.0.113.9",
    timeMs: 1_700_000_000_123.456,
    address: addressOfHost("203.0.113.9"),
    session: 99,
  };
  const bytes = encodeUtmpx(entry);
  assert.equal(bytes.length, 384);
  const back = decodeUtmpx(bytes);
  assert.equal(back.type, UtmpType.USER_PROCESS);
  assert.equal(back.pid, 4242);
  assert.equal(back.line, "pts/7");
  assert.equal(back.id, "ts/7");
  assert.equal(back.host, "203.0.113.9");
  assert.equal(back.session, 99);
  assert.equal(Math.round(back.timeMs), 1_700_000_000_123);
  // 32 bytes at most, and no half character at the cut.
  assert.ok(new TextEncoder().encode(back.user).length <= 32);
  assert.ok(entry.user.startsWith(back.user));
  assert.ok(!back.user.includes("\uFFFD"));
  assert.deepEqual([...back.address!.subarray(0, 4)], [203, 0, 113, 9]);
});

test("line, id and address follow login(1)'s conventions", () => {
  assert.equal(lineOfTty("/dev/pts/3"), "pts/3");
  assert.equal(lineOfTty("/dev/tty1"), "tty1");
  assert.equal(lineOfTty(":0"), ":0");
  assert.equal(idOfLine("pts/3"), "ts/3");
  assert.equal(idOfLine("tty1"), "tty1");
  assert.equal(idOfLine("3"), "3");
  assert.equal(addressOfHost("example.org"), undefined);
  assert.equal(addressOfHost("256.1.1.1"), undefined);
  const v6 = addressOfHost("2001:db8::1")!;
  assert.deepEqual([...v6], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const mapped = addressOfHost("::ffff:192.0.2.1")!;
  assert.deepEqual([...mapped.subarray(10)], [0xff, 0xff, 192, 0, 2, 1]);
  assert.equal(addressOfHost("1:2:3"), undefined);
});

test("who lists a utmp entry until it is cleared; last shows login and logout", () => {
  using tmp = tempDir();
  const utmp = join(tmp.dir, "utmp");
  const wtmp = join(tmp.dir, "wtmp");
  ensureWritable(utmp, "utmp file", true);
  ensureWritable(wtmp, "wtmp file", true);
  const entry = {
    type: UtmpType.USER_PROCESS,
    pid: process.pid,
    line: "pts/91",
    id: "s/91",
    user: "carol",
    host: "192.0.2.44",
    timeMs: Date.now() - 65_000,
  };
  putUtmpx(utmp, entry);
  appendWtmpx(wtmp, entry);
  // Another session on another line, from a process that is also alive (ours).
  putUtmpx(utmp, { ...entry, line: "pts/92", id: "s/92", user: "dave" });
  assert.match(run("who", [utmp]), /^carol\s+pts\/91\s.*\(192\.0\.2\.44\)$/m);

  // A clear for another login must leave the entry alone: another pid, user or login time.
  assert.equal(clearUtmpx(utmp, { ...entry, pid: process.pid + 1 }, { wtmpFile: wtmp }), false);
  assert.equal(clearUtmpx(utmp, { ...entry, user: "mallory" }, { wtmpFile: wtmp }), false);
  assert.equal(clearUtmpx(utmp, { ...entry, timeMs: entry.timeMs - 1 }, { wtmpFile: wtmp }), false);
  assert.match(run("who", [utmp]), /^carol\s/m);
  assert.equal(readFileSync(wtmp).length, 384, "no wtmp logout for an entry that was not ours");

  // In the past: `last` says "still running" for a logout in the very second it runs.
  assert.equal(clearUtmpx(utmp, entry, { timeMs: Date.now() - 2000, wtmpFile: wtmp }), true);
  const who = run("who", [utmp]);
  assert.doesNotMatch(who, /carol/);
  assert.match(who, /^dave\s+pts\/92/m);
  const records = readUtmpxFile(readFileSync(utmp));
  assert.equal(records.length, 2);
  assert.equal(records[0].type, UtmpType.DEAD_PROCESS);
  assert.equal(records[0].user, "");
  // Cleared once: the same login again is no longer there to clear, and adds no logout.
  assert.equal(clearUtmpx(utmp, entry, { wtmpFile: wtmp }), false);
  assert.equal(readFileSync(wtmp).length, 2 * 384);

  const last = run("last", ["-f", wtmp, "--time-format", "iso"]);
  // Login at least a minute before logout, so `last` prints a duration, not "still".
  assert.match(last, /^carol\s+pts\/91\s+192\.0\.2\.44\s+\S+\s+-\s+\S+\s+\(00:01\)/m);
});

test("ensureWritable names the file and the way out", () => {
  using tmp = tempDir();
  assert.throws(
    () => ensureWritable(join(tmp.dir, "missing-dir", "utmp"), "utmp file", true),
    /cannot write the utmp file ".*missing-dir\/utmp": it does not exist\. .*utmp: false/,
  );
  assert.throws(
    () => ensureWritable(join(tmp.dir, "nope"), "wtmp file", false),
    /cannot write the wtmp file/,
  );
  assert.throws(() => ensureWritable("", "utmp file", true), TypeError);
});

test("only regular utmp files are opened: links, FIFOs, devices and text files are refused", () => {
  using tmp = tempDir();
  const text = join(tmp.dir, "notes");
  writeFileSync(text, "z".repeat(960));
  const link = join(tmp.dir, "link");
  symlinkSync(text, link);
  const fifo = join(tmp.dir, "fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const entry = {
    type: UtmpType.USER_PROCESS,
    pid: 1,
    line: "pts/9",
    id: "s/9",
    user: "u",
    host: "",
    timeMs: Date.now(),
  };
  for (
    const [file, why] of [
      [link, /symbolic link \(not followed\)/],
      [fifo, /a FIFO/],
      ["/dev/zero", /a character device/],
      [tmp.dir, /a directory/],
      [text, /\(960 bytes\) is not a whole number of 384-byte utmp records/],
    ] as const
  ) {
    assert.throws(() => ensureWritable(file, "utmp file", true), why);
    assert.throws(() => putUtmpx(file, entry), why);
    assert.throws(() => appendWtmpx(file, entry), why);
    assert.throws(() => clearUtmpx(file, entry), why);
  }
  // A good utmp file with a bad wtmp file: neither is written.
  const utmp = join(tmp.dir, "utmp");
  ensureWritable(utmp, "utmp file", true);
  putUtmpx(utmp, entry);
  const before = readFileSync(utmp);
  assert.throws(() => clearUtmpx(utmp, entry, { wtmpFile: link }), /symbolic link/);
  assert.deepEqual(readFileSync(utmp), before);
  assert.equal(readFileSync(text, "utf8"), "z".repeat(960));
});

// The C layouts of ffi/layouts.ts against the system's headers: a C program compiled here prints
// what the compiler says (offsetof, sizeof, the constants' values) and every table must agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  dirent64Layout,
  type FieldLayout,
  groupLayout,
  pamConvLayout,
  pamMessageLayout,
  pamResponseLayout,
  pamXAuthDataLayout,
  passwdLayout,
  pointerSize,
  termiosConstants,
  termiosLayout,
  UtmpType,
  utmpxLayout,
  winsizeLayout,
} from "../ffi/layouts.ts";

const hasCc = spawnSync("cc", ["--version"]).status === 0;

/** A table of ffi/layouts.ts, the C struct it describes, and its keys' C member names. */
interface StructCheck {
  readonly struct: string;
  readonly layout: { readonly size: number } & Record<string, FieldLayout | number>;
  readonly members: Readonly<Record<string, string>>;
}

/** Why a test cannot run here, or `false`. */
function missing(headers: readonly string[]): string | false {
  if (!hasCc) return "no C compiler (cc) to read the headers with";
  const absent = headers.filter((h) =>
    spawnSync("cc", ["-fsyntax-only", "-x", "c", "-"], { input: `#include <${h}>\n` }).status !== 0
  );
  return absent.length ? `no <${absent.join(">, <")}> (install the -dev package)` : false;
}

/**
 * Compiles a program against `headers` that prints each struct's size, each member's offset
 * and size, and each constant's value, and returns them by name.
 */
function measure(
  headers: readonly string[],
  structs: readonly StructCheck[],
  constants: readonly string[] = [],
): Record<string, number[]> {
  const lines: string[] = [];
  for (const { struct, members } of structs) {
    lines.push(`  printf("${struct}\\t%zu\\n", sizeof(${struct}));`);
    for (const member of Object.values(members)) {
      lines.push(
        `  printf("${struct}.${member}\\t%zu %zu\\n", offsetof(${struct}, ${member}), ` +
          `sizeof(((${struct} *)0)->${member}));`,
      );
    }
  }
  for (const name of constants) lines.push(`  printf("${name}\\t%ld\\n", (long)(${name}));`);
  const source = [
    // struct dirent64 is a GNU extension.
    "#define _GNU_SOURCE",
    ...["stddef.h", "stdio.h", ...headers].map((h) => `#include <${h}>`),
    "int main(void) {",
    `  printf("void *\\t%zu\\n", sizeof(void *));`,
    ...lines,
    "  return 0;",
    "}",
    "",
  ].join("\n");
  const dir = mkdtempSync(join(tmpdir(), "seed-pam-layouts-"));
  try {
    writeFileSync(join(dir, "layout.c"), source);
    const cc = spawnSync("cc", ["-o", join(dir, "layout"), join(dir, "layout.c")], {
      encoding: "utf8",
    });
    assert.equal(cc.status, 0, `cc failed:\n${cc.stderr}\n${source}`);
    const out = spawnSync(join(dir, "layout"), [], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    return Object.fromEntries(
      out.stdout.trim().split("\n").map((line) => {
        const [name, numbers] = line.split("\t");
        return [name, numbers.split(" ").map(Number)];
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What ffi/layouts.ts says, in the shape {@linkcode measure} prints; every key must be checked. */
function ours(structs: readonly StructCheck[], constants: Record<string, number> = {}) {
  const out: Record<string, number[]> = { "void *": [pointerSize] };
  for (const { struct, layout, members } of structs) {
    out[struct] = [layout.size];
    const keys = Object.keys(layout).filter((key) => key !== "size");
    assert.deepEqual(keys.sort(), Object.keys(members).sort(), `${struct}: a member unchecked`);
    for (const key of keys) {
      const field = layout[key] as FieldLayout;
      out[`${struct}.${members[key]}`] = [field.offset, field.size];
    }
  }
  for (const [name, value] of Object.entries(constants)) out[name] = [value];
  return out;
}

const pamStructs: StructCheck[] = [
  {
    struct: "struct pam_message",
    layout: pamMessageLayout,
    members: { style: "msg_style", msg: "msg" },
  },
  {
    struct: "struct pam_response",
    layout: pamResponseLayout,
    members: { resp: "resp", retcode: "resp_retcode" },
  },
  {
    struct: "struct pam_conv",
    layout: pamConvLayout,
    members: { conv: "conv", appdataPtr: "appdata_ptr" },
  },
  {
    struct: "struct pam_xauth_data",
    layout: pamXAuthDataLayout,
    members: { namelen: "namelen", name: "name", datalen: "datalen", data: "data" },
  },
];

test(
  "pam_message, pam_response, pam_conv and pam_xauth_data match <security/pam_appl.h>",
  { skip: missing(["security/pam_appl.h"]) },
  () => {
    assert.deepEqual(measure(["security/pam_appl.h"], pamStructs), ours(pamStructs));
  },
);

const terminalStructs: StructCheck[] = [
  { struct: "struct termios", layout: termiosLayout, members: { lflag: "c_lflag", cc: "c_cc" } },
  { struct: "struct winsize", layout: winsizeLayout, members: { row: "ws_row", col: "ws_col" } },
];

test(
  "termios, winsize and their constants match <termios.h> and <sys/ioctl.h>",
  { skip: missing(["termios.h", "sys/ioctl.h"]) },
  () => {
    const names = Object.keys(termiosConstants);
    assert.deepEqual(
      measure(["termios.h", "sys/ioctl.h"], terminalStructs, names),
      ours(terminalStructs, termiosConstants),
    );
  },
);

const userStructs: StructCheck[] = [
  {
    struct: "struct passwd",
    layout: passwdLayout,
    members: { name: "pw_name", uid: "pw_uid", gid: "pw_gid", dir: "pw_dir", shell: "pw_shell" },
  },
  { struct: "struct group", layout: groupLayout, members: { gid: "gr_gid" } },
];

test("passwd and group match <pwd.h> and <grp.h>", { skip: missing(["pwd.h", "grp.h"]) }, () => {
  assert.deepEqual(measure(["pwd.h", "grp.h"], userStructs), ours(userStructs));
});

const direntStructs: StructCheck[] = [
  {
    struct: "struct dirent64",
    layout: dirent64Layout,
    members: { reclen: "d_reclen", name: "d_name" },
  },
];

test("dirent64 matches <dirent.h> (getdents64's records)", { skip: missing(["dirent.h"]) }, () => {
  assert.deepEqual(measure(["dirent.h"], direntStructs), ours(direntStructs));
});

const utmpxStructs: StructCheck[] = [{
  struct: "struct utmpx",
  layout: utmpxLayout,
  members: {
    type: "ut_type",
    pid: "ut_pid",
    line: "ut_line",
    id: "ut_id",
    user: "ut_user",
    host: "ut_host",
    exit: "ut_exit",
    session: "ut_session",
    tvSec: "ut_tv.tv_sec",
    tvUsec: "ut_tv.tv_usec",
    addrV6: "ut_addr_v6",
  },
}];

test("struct utmpx and its entry types match glibc's <utmpx.h>", {
  skip: missing(["utmpx.h", "utmp.h"]),
}, () => {
  assert.deepEqual(
    // <utmp.h> has the types X/Open leaves out (RUN_LVL).
    measure(["utmpx.h", "utmp.h"], utmpxStructs, Object.keys(UtmpType)),
    ours(utmpxStructs, UtmpType),
  );
});

/**
 * The demo: one login, the way `login(1)` does it, against the stack in
 * `examples/pam.d/demo` (stock modules, no root): a wrong password first,
 * then authenticate → account → credentials → session open → close.
 *
 * Run: `deno task demo` (or `bun examples/demo.ts`).
 *
 * @module
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Conversation, MessageStyle, PamError, PamTransaction } from "../mod.ts";

const examples = dirname(fileURLToPath(import.meta.url));
const confdir = mkdtempSync(join(tmpdir(), "seed-pam-demo-"));
const template = readFileSync(join(examples, "pam.d", "demo"), "utf8");
writeFileSync(join(confdir, "demo"), template.replaceAll("{{examples}}", examples));

/** A scripted conversation: prints what the modules say, answers password prompts. */
function scripted(password: string): Conversation {
  return (messages) =>
    messages.map(({ style, text }) => {
      if (style === MessageStyle.PROMPT_ECHO_OFF) {
        console.log(`  ? ${text.trim()} ********`);
        return password;
      }
      console.log(`  ${style === MessageStyle.ERROR_MSG ? "!" : "i"} ${text}`);
      return null;
    });
}

try {
  console.log("1. A wrong password:");
  try {
    using tx = PamTransaction.start({
      service: "demo",
      user: "demo",
      confdir,
      conversation: scripted("wrong"),
    });
    tx.authenticate();
    throw new Error("unreachable: the wrong password was accepted");
  } catch (error) {
    if (!(error instanceof PamError)) throw error;
    console.log(`  -> PamError ${error.codeName}: ${error.message}`);
  }

  console.log("\n2. The right one, and a whole session:");
  using tx = PamTransaction.start({
    service: "demo",
    user: "demo",
    confdir,
    conversation: scripted("correct horse"),
  });
  tx.setItem("tty", "demo-tty");
  tx.authenticate({ disallowNullAuthtok: true });
  console.log("  -> authenticated");
  tx.acctMgmt();
  console.log("  -> account is valid");
  tx.setCred("establish");
  tx.openSession();
  console.log(`  -> session open for ${tx.getItem("user")} on ${tx.getItem("tty")}`);
  console.log("  PAM environment:", tx.getEnvList());
  tx.closeSession();
  tx.setCred("delete");
  console.log("  -> session closed; pam_end runs as `tx` leaves scope");
} finally {
  rmSync(confdir, { recursive: true, force: true });
}

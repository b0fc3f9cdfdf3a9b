/**
 * The synchronous API's runner for `deno task bench` (Deno and Bun): the
 * workload kinds of bench/c/baseline.c through `PamTransaction`, written the
 * way an application would write them.
 *
 * @module
 */

import { PamTransaction, passwordConversation } from "../../mod.ts";
import {
  collectGarbage,
  parseArgs,
  rssKiB,
  tick,
  timeAndReport,
  timePairedAndReport,
} from "./common.ts";
import { keepModulesIfAsked } from "./keep.ts";

const args = parseArgs();
keepModulesIfAsked(args);
let messages = 0;
const conversation = passwordConversation(args.password, { onMessage: () => messages++ });
const options = {
  service: args.service,
  user: args.user,
  confdir: args.confdir,
  conversation,
  library: args.library,
};

// `using` ends each transaction as an application would, also when a call throws.
const kinds: Record<string, () => void> = {
  full() {
    using tx = PamTransaction.start(options);
    tx.authenticate();
    tx.acctMgmt();
    tx.openSession();
    tx.closeSession();
  },
  auth() {
    using tx = PamTransaction.start(options);
    tx.authenticate();
  },
  "auth-silent"() {
    using tx = PamTransaction.start(options);
    tx.authenticate({ silent: true });
  },
  oneshot() {
    using tx = PamTransaction.start(options);
    tx.authenticate();
    tx.acctMgmt();
  },
};

if (args.parallel !== 1) throw new Error("the synchronous API runs one transaction at a time");
if (args.kind === "auth-paired") {
  for (let i = 0; i < args.warmup; i++) kinds.auth(), kinds["auth-silent"]();
  messages = 0;
  timePairedAndReport(args.iterations, kinds.auth, kinds["auth-silent"], () => ({
    messagesPerTx: messages / args.iterations,
  }));
} else {
  const one = kinds[args.kind];
  if (!one) throw new Error(`unknown kind ${args.kind}`);
  for (let i = 0; i < args.warmup; i++) one();
  messages = 0;
  const rssAt: Record<number, number> = {};
  const checkpoints = new Set(args.checkpoints);
  await timeAndReport(args.iterations, () => {
    for (let i = 1; i <= args.iterations; i++) {
      one();
      tick();
      if (checkpoints.has(i)) {
        collectGarbage();
        rssAt[i] = rssKiB();
      }
    }
  }, () => ({
    messagesPerTx: messages / args.iterations,
    ...(args.checkpoints.length ? { rssAt } : {}),
  }));
}

/**
 * The "modules kept" rows of `deno task bench`: with SEED_PAM_BENCH_KEEP_MODULES
 * set, the runners keep their service's modules loaded for the whole run
 * (`keepModulesLoaded()`), as bench/c/baseline.c does with a handle held open.
 * Kept apart from common.ts so that the raw-FFI runner loads no binding.
 *
 * @module
 */

import process from "node:process";
import { keepModulesLoaded } from "../../mod.ts";
import type { RunArgs } from "./common.ts";

/** Keeps the run's service's modules loaded when SEED_PAM_BENCH_KEEP_MODULES is set. */
export function keepModulesIfAsked(args: RunArgs): void {
  if (!process.env.SEED_PAM_BENCH_KEEP_MODULES) return;
  // Held until the process exits: the run is the whole life of this runner.
  keepModulesLoaded({ service: args.service, confdir: args.confdir, library: args.library });
}

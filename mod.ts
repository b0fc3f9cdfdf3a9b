/**
 * TypeScript bindings to Linux-PAM (`libpam.so.0`) through Deno's and Bun's
 * built-in FFI: no compiler, no native addon.
 *
 * @example
 * ```ts
 * import { PamTransaction, passwordConversation } from "@seed/pam";
 *
 * using tx = PamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 * });
 * tx.authenticate();
 * tx.acctMgmt();
 * ```
 *
 * @module
 */

export * from "./src/constants.ts";
export * from "./src/errors.ts";
export * from "./src/conversation.ts";
export * from "./src/transaction.ts";
export * from "./src/async/transaction.ts";
export * from "./src/async/authenticate.ts";
export * from "./src/loaded_modules.ts";
export * from "./src/async/pool.ts";
export * from "./src/session/login.ts";
export * from "./src/session/record.ts";
export * from "./src/session/program.ts";

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
export {
  type Conversation,
  type PamAnswer,
  type PamMessage,
  passwordConversation,
} from "./src/conversation.ts";
export * from "./src/transaction.ts";
export {
  type AsyncConversation,
  type AsyncFailDelay,
  AsyncPamTransaction,
  type AsyncPamTransactionOptions,
  authenticate,
  type AuthenticateOptions,
  type AuthenticateResult,
} from "./src/async.ts";
export {
  keepModulesLoaded,
  type KeepModulesLoadedOptions,
  LoadedModules,
  setModuleIdleWindow,
} from "./src/loaded_modules.ts";
export {
  setWorkerPoolSize,
  startWorkerPool,
  type WorkerPoolStats,
  workerPoolStats,
} from "./src/pool.ts";
export {
  login,
  type LoginOptions,
  LoginSession,
  type TerminalSize,
  type UtmpOptions,
} from "./src/session/login.ts";
export {
  closeSession,
  type CloseSessionOptions,
  type SessionRecord,
} from "./src/session/record.ts";
export {
  type ProgramStatus,
  SessionProgram,
  type SessionTerminal,
  type SpawnOptions,
  type StdioMode,
} from "./src/session/program.ts";

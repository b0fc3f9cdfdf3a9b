// Not a test file: `tsc -p tsconfig.exact.json` (in `npm run check`) compiles it with
// exactOptionalPropertyTypes, as a consumer's strictest tsconfig would, to prove that every
// optional option field accepts `undefined` (what `{ user: maybeUser }` passes). It imports the
// modules rather than mod.ts so that src/session/, whose LoginOptions are not there yet, stays out.
import type { AsyncPamTransactionOptions, AuthenticateOptions } from "../src/async.ts";
import type { PamErrorOptions } from "../src/errors.ts";
import type { KeepModulesLoadedOptions } from "../src/loaded_modules.ts";
import type { TerminalConversationOptions } from "../src/terminal.ts";
import type { TestStackOptions, TestUser } from "../src/testing.ts";
import { passwordConversation } from "../src/conversation.ts";
import type {
  AuthFlags,
  ChauthtokFlags,
  PamTransactionOptions,
  SilentFlag,
} from "../src/transaction.ts";

const u = undefined;

export const start: PamTransactionOptions = {
  service: "s",
  user: u,
  conversation: u,
  confdir: u,
  library: u,
  failDelay: u,
};
export const asyncStart: AsyncPamTransactionOptions = {
  ...start,
  conversation: u,
  signal: u,
  conversationTimeoutMs: u,
};
export const oneShot: AuthenticateOptions = {
  service: "s",
  user: "u",
  password: "p",
  confdir: u,
  rhost: u,
  tty: u,
  ruser: u,
  library: u,
  failDelay: u,
  disallowNullAuthtok: u,
  onMessage: u,
  signal: u,
  conversationTimeoutMs: u,
};
export const flags: [AuthFlags, SilentFlag, ChauthtokFlags] = [
  { silent: u, disallowNullAuthtok: u },
  { silent: u },
  { silent: u, changeExpiredAuthtok: u },
];
export const modules: KeepModulesLoadedOptions = { service: "s", confdir: u, library: u };
export const terminal: TerminalConversationOptions = {
  input: u,
  infoOutput: u,
  errorOutput: u,
  onMessage: u,
};
export const user: TestUser = { password: "p", service: u };
export const stack: TestStackOptions = { services: {}, users: u };
export const error: PamErrorOptions = { description: u, messages: u, failDelayMs: u };
export const conversation = passwordConversation("p", { onMessage: u });

// Not a test file: `tsc -p tsconfig.exact.json` (in `npm run check`) compiles it with
// exactOptionalPropertyTypes, as a consumer's strictest tsconfig would, to prove that every
// optional option field accepts `undefined` (what `{ user: maybeUser }` passes). It imports the
// modules one by one, as mod.ts re-exports them.
import type { AsyncPamTransactionOptions } from "../src/async/transaction.ts";
import type { AuthenticateOptions } from "../src/async/authenticate.ts";
import type { PamErrorOptions } from "../src/errors.ts";
import type { KeepModulesLoadedOptions } from "../src/loaded_modules.ts";
import type { TerminalConversationOptions } from "../src/cli/terminal.ts";
import type { TestStackOptions, TestUser } from "../src/testing.ts";
import { passwordConversation } from "../src/conversation.ts";
import type { LoginOptions, UtmpOptions } from "../src/session/login.ts";
import type { CloseSessionOptions } from "../src/session/record.ts";
import type { SpawnOptions } from "../src/session/program.ts";
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
export const utmp: UtmpOptions = { utmpFile: u, wtmpFile: u, line: u, id: u, host: u, pid: u };
export const login: LoginOptions = {
  ...asyncStart,
  tty: u,
  rhost: u,
  ruser: u,
  silent: u,
  changeExpiredAuthtok: u,
  utmp: u,
  inProcess: u,
};
export const close: CloseSessionOptions = {
  service: "login",
  conversation: u,
  silent: u,
  confdir: u,
  library: u,
  inProcess: u,
};
export const spawn: SpawnOptions = {
  env: u,
  cwd: u,
  stdin: u,
  stdout: u,
  stderr: u,
  endsSession: u,
};

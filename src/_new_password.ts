/**
 * What `passwordConversation()` throws at a prompt for a new
 * password, and how `login()` recognises it.
 *
 * @module
 */

/**
 * What `passwordConversation()` throws at a prompt for a new
 * password; the failed call's `PamError.cause`. Internal: `login()` recognises it with {@linkcode isNewPasswordNeeded} to
 * say that the password has expired and that changing it needs a
 * conversation that can ask for a new one.
 */
export class NewPasswordNeeded extends Error {
  /** Builds the error for the prompt `text` (a module's words, no secret). */
  constructor(text: string) {
    super(
      `passwordConversation() knows only the current password and does not give it as a new ` +
        `one (prompt ${JSON.stringify(text)}): the password has expired, and changing it needs a ` +
        "conversation that can ask for a new one",
    );
    this.name = "NewPasswordNeeded";
  }
}

/** Whether `cause` (a `PamError`'s) is `passwordConversation()` refusing a new-password prompt. */
export function isNewPasswordNeeded(cause: unknown): cause is NewPasswordNeeded {
  return cause instanceof NewPasswordNeeded;
}

/**
 * Wraps a function so that chosen arguments are converted on the way in,
 * with fixed arities: a rest-and-spread wrapper costs about a microsecond per
 * call, which the conversation trampoline pays once per message.
 *
 * @module
 */

/**
 * `fn` with `convert` applied to argument `i` wherever `which[i]` is true;
 * `fn` itself (or `null`) when no argument needs it.
 */
export function convertArguments(
  fn: unknown,
  which: readonly boolean[],
  convert: (value: unknown) => unknown,
): unknown {
  const f = fn as ((...args: unknown[]) => unknown) | null;
  if (!f || !which.includes(true)) return f;
  const c = (i: number, v: unknown) => which[i] ? convert(v) : v;
  switch (which.length) {
    case 1:
      return (a: unknown) => f(c(0, a));
    case 2:
      return (a: unknown, b: unknown) => f(c(0, a), c(1, b));
    case 3:
      return (a: unknown, b: unknown, d: unknown) => f(c(0, a), c(1, b), c(2, d));
    case 4:
      return (a: unknown, b: unknown, d: unknown, e: unknown) =>
        f(c(0, a), c(1, b), c(2, d), c(3, e));
    default:
      return (...args: unknown[]) => f(...args.map((v, i) => c(i, v)));
  }
}

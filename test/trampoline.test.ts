// The conversation trampoline called directly through the function pointer
// libpam holds (see DirectConversation in _helpers.ts): exact return values,
// NULL resp, bad num_msg, every kind of handler error, and the same error
// paths after tens of thousands of warm calls (a JIT once turned Bun
// callbacks' integer returns into 0 = PAM_SUCCESS).
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  MAX_ANSWER_BYTES,
  MAX_BINARY_PROMPT_BYTES,
  MessageStyle,
  type PamMessage,
} from "../mod.ts";
import { DirectConversation, type RawMessage, SECRET, text } from "./_helpers.ts";

const OK = 0;
const CONV_ERR = 19;

const prompt: RawMessage = { style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " };
const info: RawMessage = { style: MessageStyle.TEXT_INFO, text: "Welcome" };
const error: RawMessage = { style: MessageStyle.ERROR_MSG, text: "Careful" };

type BadHandler = { name: string; answers: () => unknown; cause?: (c: unknown) => void };

// Every way a handler can get it wrong; each must give PAM_CONV_ERR, never success.
function badHandlers(): BadHandler[] {
  const thrown = new Error("handler failed");
  return [
    {
      name: "thrown error",
      answers: () => {
        throw thrown;
      },
      cause: (c) => assert.equal(c, thrown),
    },
    { name: "too few answers", answers: () => [] },
    { name: "too many answers", answers: () => [SECRET, SECRET] },
    { name: "number", answers: () => [42] },
    { name: "object", answers: () => [{ toString: () => SECRET }] },
    { name: "boolean", answers: () => [true] },
    { name: "string with NUL", answers: () => [`${SECRET}\0tail`] },
    { name: "Uint8Array with NUL", answers: () => [new Uint8Array([65, 0, 66])] },
    { name: "resolved Promise", answers: () => Promise.resolve([SECRET]) },
    { name: "rejected Promise", answers: () => Promise.reject(new Error("late")) },
    { name: "thenable", answers: () => ({ then: () => {} }) },
    { name: "string instead of array", answers: () => SECRET },
    { name: "object instead of array", answers: () => ({ 0: SECRET, length: 1 }) },
    { name: "null instead of array", answers: () => null },
    { name: "undefined instead of array", answers: () => undefined },
  ];
}

function assertNoSecret(value: unknown): void {
  if (value instanceof Error) {
    assert.ok(!value.message.includes(SECRET), `secret in message: ${value.message}`);
    assert.ok(!String(value.stack).includes(SECRET), "secret in stack");
  }
}

function checkBadHandlers(direct: DirectConversation, label: string): void {
  for (const bad of badHandlers()) {
    direct.slot.cause = undefined;
    direct.handler = () => bad.answers();
    const r = direct.call([prompt]);
    assert.equal(r.status, CONV_ERR, `${label}: ${bad.name} returned ${r.status}`);
    assert.equal(r.respNull, true, `${label}: ${bad.name} left *resp non-NULL`);
    assert.ok(direct.slot.cause instanceof Error, `${label}: ${bad.name} set no cause`);
    if (bad.cause) bad.cause(direct.slot.cause);
    else assert.ok(direct.slot.cause instanceof TypeError, `${label}: ${bad.name} not a TypeError`);
    assertNoSecret(direct.slot.cause);
  }
}

test("trampoline: answers prompts, collects info/error messages, hands over a calloc'd array", () => {
  const seen: unknown[] = [];
  const direct = new DirectConversation((messages) => {
    seen.push(...messages);
    return ["pw", "alice", null, undefined];
  });
  try {
    const r = direct.call([
      prompt,
      { style: MessageStyle.PROMPT_ECHO_ON, text: "Login: " },
      info,
      error,
    ]);
    assert.equal(r.status, OK);
    assert.deepEqual(r.answers?.map(text), ["pw", "alice", null, null]);
    assert.deepEqual(seen, [
      { style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " },
      { style: MessageStyle.PROMPT_ECHO_ON, text: "Login: " },
      { style: MessageStyle.TEXT_INFO, text: "Welcome" },
      { style: MessageStyle.ERROR_MSG, text: "Careful" },
    ]);
    // Only info and error messages are kept for PamError.messages, never prompts or answers.
    assert.deepEqual(direct.slot.messages, [
      { style: MessageStyle.TEXT_INFO, text: "Welcome" },
      { style: MessageStyle.ERROR_MSG, text: "Careful" },
    ]);
  } finally {
    direct.close();
  }
});

test("trampoline: non-ASCII answers are UTF-8 encoded in full", () => {
  const answer = "pässwörd-€-𝄞";
  const direct = new DirectConversation(() => [answer]);
  try {
    const r = direct.call([prompt]);
    assert.equal(r.status, OK);
    assert.equal(text(r.answers?.[0]), answer);
  } finally {
    direct.close();
  }
});

test("trampoline: an empty answer is an empty C string, not NULL and not an error", () => {
  const direct = new DirectConversation(() => ["", new Uint8Array(0), null]);
  try {
    const r = direct.call([prompt, prompt, prompt]);
    assert.equal(r.status, OK);
    assert.deepEqual(r.answers?.map(text), ["", "", null]);
    assert.deepEqual(r.answers?.map((a) => a?.length ?? null), [0, 0, null]);
  } finally {
    direct.close();
  }
});

test('trampoline: a NULL message text reads as ""; an unknown style passes through', () => {
  const seen: unknown[] = [];
  const direct = new DirectConversation((messages) => {
    seen.push(...messages);
    return messages.map(() => null);
  });
  try {
    const r = direct.call([{ style: MessageStyle.TEXT_INFO }, { style: 99, text: "odd" }]);
    assert.equal(r.status, OK);
    assert.deepEqual(seen, [{ style: MessageStyle.TEXT_INFO, text: "" }, {
      style: 99,
      text: "odd",
    }]);
  } finally {
    direct.close();
  }
});

test("trampoline: 32 messages (PAM_MAX_NUM_MSG) are fine", () => {
  const direct = new DirectConversation((messages) => messages.map((_, i) => `a${i}`));
  try {
    const messages = Array.from({ length: 32 }, (_, i) => ({ ...prompt, text: `p${i}` }));
    const r = direct.call(messages);
    assert.equal(r.status, OK);
    assert.deepEqual(r.answers?.map(text), messages.map((_, i) => `a${i}`));
  } finally {
    direct.close();
  }
});

test("trampoline: Uint8Array answers are copied, then zeroed (success and error)", () => {
  const bytes = new TextEncoder().encode(SECRET);
  const direct = new DirectConversation(() => [bytes]);
  try {
    const r = direct.call([prompt]);
    assert.equal(r.status, OK);
    assert.equal(text(r.answers?.[0]), SECRET);
    assert.ok(bytes.every((b) => b === 0), "the answer bytes were not zeroed");

    // On an error path (wrong count) the handler's byte answers are zeroed too.
    const again = new TextEncoder().encode(SECRET);
    direct.handler = () => [again, again];
    assert.equal(direct.call([prompt]).status, CONV_ERR);
    assert.ok(again.every((b) => b === 0), "byte answers not zeroed on error");
  } finally {
    direct.close();
  }
});

test("trampoline: binary prompts carry their packet, binary answers may contain NUL", () => {
  // A libpamc packet: 4-byte big-endian length (header included), control byte, data.
  const packet = new Uint8Array([0, 0, 0, 8, 1, 0xaa, 0x00, 0xbb]);
  let received: Uint8Array | undefined;
  const answer = new Uint8Array([0, 0, 0, 7, 2, 0x00, 0xcc]);
  const direct = new DirectConversation((messages) => {
    assert.equal(messages[0].style, MessageStyle.BINARY_PROMPT);
    assert.equal(messages[0].text, "");
    received = messages[0].data;
    return [answer];
  });
  try {
    const r = direct.call([{ style: MessageStyle.BINARY_PROMPT, bytes: packet }], {
      lengths: [7],
    });
    assert.equal(r.status, OK);
    assert.deepEqual(received, packet);
    assert.deepEqual(r.answers?.[0], new Uint8Array([0, 0, 0, 7, 2, 0x00, 0xcc]));
    assert.ok(answer.every((b) => b === 0));
  } finally {
    direct.close();
  }
});

test("trampoline: NULL resp is fine for info/error messages, CONV_ERR for prompts", () => {
  let calls = 0;
  const direct = new DirectConversation((messages) => {
    calls++;
    return messages.map(() => null);
  });
  try {
    assert.equal(direct.call([info, error], { nullResp: true }).status, OK);
    assert.equal(calls, 1);
    assert.equal(direct.slot.messages.length, 2);
    const r = direct.call([info, prompt], { nullResp: true });
    assert.equal(r.status, CONV_ERR);
    assert.ok(direct.slot.cause instanceof TypeError);
    assert.match((direct.slot.cause as Error).message, /NULL response pointer/);

    // With no handler at all: info with NULL resp still succeeds, prompts do not.
    direct.handler = null;
    assert.equal(direct.call([info], { nullResp: true }).status, OK);
    assert.equal(direct.call([prompt], { nullResp: true }).status, CONV_ERR);
  } finally {
    direct.close();
  }
});

test("trampoline: num_msg 0, negative or above 32, and a NULL msg array give CONV_ERR", () => {
  let calls = 0;
  const direct = new DirectConversation((messages) => {
    calls++;
    return messages.map(() => "x");
  });
  try {
    for (const count of [0, -1, -2147483648, 33, 1000]) {
      const r = direct.call([prompt], { count });
      assert.equal(r.status, CONV_ERR, `num_msg ${count} returned ${r.status}`);
      assert.equal(r.respNull, true, `num_msg ${count} left *resp non-NULL`);
      assert.ok(direct.slot.cause instanceof RangeError);
    }
    const r = direct.call([prompt], { nullMessages: true });
    assert.equal(r.status, CONV_ERR);
    assert.equal(r.respNull, true);
    assert.equal(calls, 0, "the handler must not run for a malformed call");
  } finally {
    direct.close();
  }
});

test("trampoline: an unknown appdata_ptr gives CONV_ERR, not a crash", () => {
  const direct = new DirectConversation(() => ["x"]);
  try {
    for (const appdata of [0, 987654321]) {
      const r = direct.call([prompt], { appdata });
      assert.equal(r.status, CONV_ERR, `appdata ${appdata} returned ${r.status}`);
    }
  } finally {
    direct.close();
  }
});

test("trampoline: no handler — prompts give CONV_ERR, info messages are collected", () => {
  const direct = new DirectConversation(null);
  try {
    const r = direct.call([info, error]);
    assert.equal(r.status, OK);
    assert.equal(r.answers, undefined, "no response array is handed over without prompts");
    assert.equal(r.respNull, true);
    assert.deepEqual(direct.slot.messages.map((m) => m.text), ["Welcome", "Careful"]);
    const p = direct.call([info, prompt]);
    assert.equal(p.status, CONV_ERR);
    assert.equal(p.respNull, true);
    assert.match((direct.slot.cause as Error).message, /no conversation/);
  } finally {
    direct.close();
  }
});

test("trampoline: every kind of handler error gives CONV_ERR with *resp NULL and a cause", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const direct = new DirectConversation(null);
  try {
    checkBadHandlers(direct, "cold");
    // A rejected Promise must not surface as an unhandled rejection later.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    direct.close();
  }
});

test("trampoline: error paths still give CONV_ERR after 30,000 warm successful calls", {
  timeout: 300_000,
}, () => {
  const direct = new DirectConversation(null);
  try {
    const good = (messages: readonly unknown[]) => messages.map(() => "pw");
    direct.handler = good;
    for (let i = 0; i < 30_000; i++) {
      const r = direct.call([prompt]);
      if (r.status !== OK || r.answers?.length !== 1) {
        assert.fail(`warm call ${i} returned ${r.status}`);
      }
    }
    checkBadHandlers(direct, "warm");
    // Interleaved: success, failure, success, failure... the exact value every time.
    for (let i = 0; i < 2_000; i++) {
      direct.handler = good;
      assert.equal(direct.call([prompt]).status, OK);
      direct.handler = () => {
        throw new Error("nope");
      };
      assert.equal(direct.call([prompt]).status, CONV_ERR);
      direct.handler = () => [1];
      assert.equal(direct.call([prompt]).status, CONV_ERR);
    }
    direct.handler = good;
    const last = direct.call([prompt, info]);
    assert.equal(last.status, OK);
    assert.equal(text(last.answers?.[0]), "pw");
  } finally {
    direct.close();
  }
});

/** An array whose element `index` yields `values` in turn, one per read, counting its reads. */
function shifting(values: unknown[], index = 0): { answers: unknown[]; reads: () => number } {
  let reads = 0;
  const answers: unknown[] = [];
  Object.defineProperty(answers, index, {
    enumerable: true,
    get: () => values[Math.min(reads++, values.length - 1)],
  });
  return { answers, reads: () => reads };
}

test("trampoline: each answer is read exactly once; the check and the copy see one snapshot", () => {
  const bytes = () => new TextEncoder().encode(SECRET);
  const cases: [string, unknown[]][] = [
    ["string, then one with a NUL", [SECRET, `${SECRET}\0tail`]],
    ["bytes, then a fake with byteLength 0", [bytes(), { byteLength: 0 }]],
    ["string, then a number", [SECRET, 42]],
  ];
  const direct = new DirectConversation(null);
  try {
    for (const [name, values] of cases) {
      const getter = shifting(values);
      direct.handler = () => getter.answers;
      const r = direct.call([prompt]);
      assert.equal(r.status, OK, name);
      assert.equal(text(r.answers?.[0]), SECRET, name);
      assert.equal(getter.reads(), 1, `${name}: read ${getter.reads()} times`);
    }
    // A Proxy's traps run once per element, and once for the length.
    const reads = new Map<PropertyKey, number>();
    let n = 0;
    const proxy = new Proxy([SECRET], {
      get(target, key, receiver) {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        return key === "0"
          ? (n++ === 0 ? SECRET : `${SECRET}\0tail`)
          : Reflect.get(target, key, receiver);
      },
    });
    direct.handler = () => proxy;
    const r = direct.call([prompt]);
    assert.equal(r.status, OK);
    assert.equal(text(r.answers?.[0]), SECRET);
    assert.equal(reads.get("0"), 1);
    assert.equal(reads.get("length"), 1);
  } finally {
    direct.close();
  }
});

test("trampoline: hostile answer containers fail the call, never escape it", () => {
  const revocable = Proxy.revocable([SECRET], {});
  revocable.revoke();
  const boom = new Error("trap");
  const handlers: [string, () => unknown][] = [
    ["revoked Proxy", () => revocable.proxy],
    ["throwing get trap", () =>
      new Proxy([SECRET], {
        get: () => {
          throw boom;
        },
      })],
    ["throwing then getter", () =>
      Object.defineProperty([SECRET], "then", {
        get: () => {
          throw boom;
        },
      })],
    [
      "length that is not a number",
      () => new Proxy([SECRET], { get: (t, k) => (k === "length" ? "1" : Reflect.get(t, k)) }),
    ],
  ];
  const direct = new DirectConversation(null);
  try {
    for (const [name, answers] of handlers) {
      direct.slot.cause = undefined;
      direct.handler = answers;
      const r = direct.call([prompt]);
      assert.equal(r.status, CONV_ERR, name);
      assert.equal(r.respNull, true, name);
      assert.ok(direct.slot.cause instanceof Error, name);
    }
  } finally {
    direct.close();
  }
});

test("trampoline: the handler gets frozen messages; checks go by the count and styles from C", () => {
  const direct = new DirectConversation(null);
  try {
    let frozen = false;
    direct.handler = (messages) => {
      frozen = Object.isFrozen(messages) && messages.every((m) => Object.isFrozen(m));
      try {
        (messages as PamMessage[]).length = 0;
      } catch { /* frozen: refused in strict mode */ }
      return [];
    };
    const r = direct.call([prompt]);
    assert.ok(frozen, "the messages were not frozen");
    assert.equal(r.status, CONV_ERR, "emptying the messages switched the count check off");
    assert.match((direct.slot.cause as Error).message, /0 answers for 1 messages/);

    direct.handler = (messages) => {
      try {
        (messages[0] as { style: number }).style = MessageStyle.BINARY_PROMPT;
      } catch { /* frozen */ }
      return [new TextEncoder().encode(`${SECRET}\0junk`)];
    };
    assert.equal(direct.call([prompt]).status, CONV_ERR, "a NUL got through as binary");

    // What PamError.messages reports cannot be rewritten by the handler either.
    direct.handler = (messages) => {
      try {
        (messages[0] as { text: string }).text = "forged";
      } catch { /* frozen */ }
      return [null];
    };
    direct.slot.messages = [];
    assert.equal(direct.call([info]).status, OK);
    assert.deepEqual(direct.slot.messages.map((m) => m.text), ["Welcome"]);
  } finally {
    direct.close();
  }
});

test("trampoline: answers over MAX_ANSWER_BYTES fail the call with a RangeError, at the limit pass", () => {
  const direct = new DirectConversation(null);
  try {
    const fits: unknown[] = [
      "a".repeat(MAX_ANSWER_BYTES),
      new Uint8Array(MAX_ANSWER_BYTES).fill(65),
    ];
    for (const answer of fits) {
      direct.handler = () => [answer];
      const r = direct.call([prompt]);
      assert.equal(r.status, OK);
      assert.equal(r.answers?.[0]?.length, MAX_ANSWER_BYTES);
    }
    const tooLong: [string, unknown][] = [
      ["ASCII", "a".repeat(MAX_ANSWER_BYTES + 1)],
      ["two-byte UTF-8", "é".repeat(MAX_ANSWER_BYTES / 2 + 1)],
      ["bytes", new Uint8Array(MAX_ANSWER_BYTES + 1).fill(65)],
      ["100 MB", "x".repeat(100 * 1024 * 1024)],
    ];
    for (const [name, answer] of tooLong) {
      direct.slot.cause = undefined;
      direct.handler = () => [answer];
      const r = direct.call([prompt]);
      assert.equal(r.status, CONV_ERR, name);
      assert.ok(direct.slot.cause instanceof RangeError, `${name}: ${direct.slot.cause}`);
      assert.match((direct.slot.cause as Error).message, /MAX_ANSWER_BYTES/);
    }
  } finally {
    direct.close();
  }
});

test("trampoline: a binary prompt's length header is bounded; a lying one fails unread", () => {
  let calls = 0;
  const direct = new DirectConversation(() => {
    calls++;
    return [null];
  });
  try {
    const packet = (claim: number) => {
      const bytes = new Uint8Array([0, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
      new DataView(bytes.buffer).setUint32(0, claim);
      return bytes;
    };
    for (const claim of [100_000, 0x7fffffff, 0xffffffff, MAX_BINARY_PROMPT_BYTES + 1, 4, 0]) {
      direct.slot.cause = undefined;
      const r = direct.call([{ style: MessageStyle.BINARY_PROMPT, bytes: packet(claim) }]);
      assert.equal(r.status, CONV_ERR, `claim ${claim}`);
      assert.ok(direct.slot.cause instanceof RangeError, `claim ${claim}`);
    }
    assert.equal(calls, 0, "the handler saw a packet it should not have");
    assert.equal(direct.call([{ style: MessageStyle.BINARY_PROMPT, bytes: packet(9) }]).status, OK);
    assert.equal(calls, 1);
  } finally {
    direct.close();
  }
});

test("trampoline: a message text past 64 KiB fails the call with a RangeError; at the limit it passes", () => {
  const seen: number[] = [];
  const direct = new DirectConversation((messages) => {
    seen.push(messages[0].text.length);
    return [null];
  });
  try {
    const limit = 64 * 1024;
    assert.equal(
      direct.call([{ style: MessageStyle.TEXT_INFO, text: "x".repeat(limit) }]).status,
      OK,
    );
    assert.deepEqual(seen, [limit]);
    direct.slot.cause = undefined;
    const r = direct.call([{ style: MessageStyle.TEXT_INFO, text: "x".repeat(limit + 1) }]);
    assert.equal(r.status, CONV_ERR);
    assert.equal(r.respNull, true);
    assert.ok(direct.slot.cause instanceof RangeError, String(direct.slot.cause));
    assert.deepEqual(seen, [limit], "the handler never saw the oversized message");
  } finally {
    direct.close();
  }
});

test("trampoline: an answer left empty is NULL, never an earlier call's string", () => {
  let answers: (string | null)[] = ["first", "second"];
  const direct = new DirectConversation(() => answers);
  try {
    const two = [prompt, { ...prompt, text: "Again: " }];
    assert.deepEqual(direct.call(two).answers?.map((a) => a && text(a)), ["first", "second"]);
    answers = ["third", null];
    // A stale pointer here would be freed twice by libpam.
    assert.deepEqual(direct.call(two).answers?.map((a) => a && text(a)), ["third", null]);
    answers = [null, null];
    assert.deepEqual(direct.call(two).answers, [null, null]);
  } finally {
    direct.close();
  }
});

test("trampoline: a repeated prompt is the same frozen message; other texts and info messages are their own", () => {
  const seen: (readonly PamMessage[])[] = [];
  const direct = new DirectConversation((messages) => {
    seen.push(messages);
    return messages.map(() => SECRET);
  });
  try {
    direct.call([prompt]);
    direct.call([prompt]);
    direct.call([{ ...prompt, text: "Token: " }]);
    direct.call([prompt, { ...prompt, text: "Token: " }]);
    assert.equal(seen[0], seen[1], "one frozen array for the same lone prompt");
    assert.ok(Object.isFrozen(seen[0]) && Object.isFrozen(seen[0][0]));
    assert.notEqual(seen[2][0], seen[0][0]);
    assert.equal(seen[2][0].text, "Token: ");
    assert.equal(seen[3].length, 2);
    assert.ok(Object.isFrozen(seen[3]));
    assert.equal(seen[3][0], seen[0][0]);
    assert.deepEqual(seen[3].map((m) => m.text), ["Password: ", "Token: "]);
    // Info texts vary per call (a last-login line): never shared.
    const infos: PamMessage[] = [];
    direct.handler = (messages) => {
      infos.push(...messages);
      return [null];
    };
    direct.call([info]);
    direct.call([info]);
    assert.notEqual(infos[0], infos[1]);
    assert.deepEqual(infos[0], infos[1]);
  } finally {
    direct.close();
  }
});

test("trampoline: a `then` getter that throws fails the call and still zeroes the byte answers", () => {
  const secret = new TextEncoder().encode(SECRET);
  const direct = new DirectConversation(() => {
    const answers: unknown[] = [secret];
    Object.defineProperty(answers, "then", {
      get() {
        throw new Error("then getter");
      },
    });
    return answers;
  });
  try {
    const r = direct.call([prompt]);
    assert.equal(r.status, CONV_ERR);
    assert.equal(r.respNull, true);
    assert.deepEqual([...secret], new Array(secret.length).fill(0));
  } finally {
    direct.close();
  }
});

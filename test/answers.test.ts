// What a handler returns is hostile: each answer is read once, and the handler's own byte
// answers are zeroed on every path, also past the first bad one and when the array is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { refuseThenable, snapshotAnswers } from "../src/_answers.ts";
import { MessageStyle } from "../mod.ts";

const prompts = (n: number) => Array.from({ length: n }, () => MessageStyle.PROMPT_ECHO_OFF);

test("a bad answer still zeroes the byte answers after it, each read once", () => {
  const later = new Uint8Array([1, 2, 3]);
  const reads: number[] = [];
  const answers = new Proxy([new Uint8Array([9]), 42, later], {
    get(target, key, receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads.push(Number(key));
      return Reflect.get(target, key, receiver);
    },
  });
  assert.throws(() => snapshotAnswers(answers, prompts(3)), /answer 1 is a number/);
  assert.deepEqual([...later], [0, 0, 0]);
  assert.deepEqual(reads, [0, 1, 2]);
});

test("a getter that throws fails the snapshot; the answers after it are still zeroed", () => {
  const later = new Uint8Array([7, 7]);
  const answers: unknown[] = [];
  Object.defineProperty(answers, 0, {
    get() {
      throw new Error("hostile");
    },
  });
  answers[1] = later;
  assert.throws(() => snapshotAnswers(answers, prompts(2)), /hostile/);
  assert.deepEqual([...later], [0, 0]);
});

test("an array that is also a thenable is refused with its byte answers zeroed", () => {
  const secret = new Uint8Array([5, 5, 5]);
  const answers = Object.assign([secret], { then: () => {} });
  assert.throws(() => refuseThenable(answers), /returned a Promise/);
  assert.deepEqual([...secret], [0, 0, 0]);
});

/**
 * Running the rows: each cell in its own process, repetitions interleaved.
 *
 * @module
 */

import { log, onlyRows, reps } from "./_options.ts";
import { type Impl, type ImplId, rows } from "./_rows.ts";
import { notes, type Result, runOne } from "./_setup.ts";

export interface Cell {
  label: string;
  results: (Result | undefined)[];
  errors: string[];
}

export function rotate<T>(xs: T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

export async function bench(impls: Map<ImplId, Impl>) {
  const selected = rows.filter((r) => !onlyRows || onlyRows.includes(r.id));
  const cells = new Map<string, Map<ImplId, Cell>>();
  for (const row of selected) {
    const m = new Map<ImplId, Cell>();
    for (const id of row.impls) {
      const impl = impls.get(id)!;
      if (impl.skip) continue;
      m.set(id, { label: impl.label, results: [], errors: [] });
    }
    cells.set(row.id, m);
  }
  const skippedNotes = new Set<string>();
  for (let rep = 0; rep < reps; rep++) {
    for (const row of selected) {
      const cellMap = cells.get(row.id)!;
      // Rotate the order each repetition so no implementation always runs first.
      for (const id of rotate([...cellMap.keys()], rep)) {
        const impl = impls.get(id)!;
        const cell = cellMap.get(id)!;
        if (cell.errors.length && cell.errors[0].startsWith("skip:")) continue;
        log(`rep ${rep + 1}/${reps}  ${row.id.padEnd(16)} ${impl.label}`);
        const result = await runOne(impl, row, row.iterations);
        if (typeof result === "string") {
          if (result.startsWith("exit")) {
            cell.errors.push(result);
            cell.results[rep] = undefined;
          } else {
            cell.errors.unshift(`skip: ${result}`);
            if (!skippedNotes.has(`${impl.label}${result}`)) {
              skippedNotes.add(`${impl.label}${result}`);
              notes.push(`${impl.label}: skipped: ${result}`);
            }
          }
        } else {
          cell.results[rep] = result;
        }
      }
    }
  }
  return { selected, cells };
}

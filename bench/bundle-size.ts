/** What a function's bundle weighs: in all, and what a cold start reads and compiles (for the bench and test/performance-budget.test.ts). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** A bundle's bytes, its chunks' included. */
export function bundleBytes(file: string): number {
  const dir = path.dirname(file);
  let total = statSync(file).size;
  try {
    for (const chunk of readdirSync(path.join(dir, 'chunks'))) if (chunk.endsWith('.mjs')) total += statSync(path.join(dir, 'chunks', chunk)).size;
  } catch {
    // no chunks
  }
  return total;
}

/** The files a cold start reads: the entry and every chunk it imports statically, transitively (not those behind `import()`). */
export function filesLoadedAtInit(file: string): string[] {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*)"(\.{1,2}\/[^"]+\.mjs)"/g)) visit(path.resolve(path.dirname(f), m[1]!));
  };
  visit(file);
  return [...seen];
}

/** The bytes a cold start reads and compiles. */
export function loadedAtInit(file: string): number {
  return filesLoadedAtInit(file).reduce((sum, f) => sum + statSync(f).size, 0);
}

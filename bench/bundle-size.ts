/** What a function's bundle weighs: in all, and what a cold start reads and compiles (for the bench and test/performance-budget.test.ts). */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from '../local-runner/state.js';

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

/**
 * The reference every function is measured against: a bare `GetItemCommand` handler bundled as the
 * functions are (ESM, minified, the SDK included) into `<dir>/reference/index.mjs`; returns that path.
 */
export async function buildReferenceBundle(dir: string): Promise<string> {
  const entry = path.join(dir, 'reference.mjs');
  writeFileSync(
    entry,
    "import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';\n" +
      'const client = new DynamoDBClient({});\n' +
      "export const handler = async (e) => client.send(new GetItemCommand({ TableName: process.env.T, Key: { pk: { S: e.k } } }));\n",
  );
  const out = path.join(dir, 'reference', 'index.mjs');
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    nodePaths: [path.join(PROJECT_ROOT, 'node_modules')],
    banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
    logLevel: 'error',
  });
  return out;
}

/**
 * The console's build: `vite build console --outDir <dir>` (the stack's asset bundling runs it at synth).
 * Prints the gzipped size of all the JavaScript and fails the build past the budget.
 */
import { gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/** All of the console's JavaScript, gzipped. */
export const JS_BUDGET_BYTES = 150 * 1024;

function jsBudget(): Plugin {
  return {
    name: 'knouds-js-budget',
    apply: 'build',
    generateBundle(_options, bundle) {
      let total = 0;
      for (const file of Object.values(bundle)) {
        if (file.type === 'chunk') total += gzipSync(file.code, { level: 9 }).length;
      }
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
      this.info(`console JavaScript: ${kb(total)} gzipped (budget ${kb(JS_BUDGET_BYTES)})`);
      if (total > JS_BUDGET_BYTES) this.error(`the console's JavaScript is ${kb(total)} gzipped, over its ${kb(JS_BUDGET_BYTES)} budget`);
    },
  };
}

export default defineConfig(({ command }) => {
  // A build is always the production build, whatever NODE_ENV its caller has: Jest's global setup
  // synthesizes the stack (which runs this build) with NODE_ENV=test, which would bundle React's
  // development build (over 60 KB more).
  if (command === 'build') process.env['NODE_ENV'] = 'production';
  return {
    plugins: [react(), jsBudget()],
    build: { sourcemap: false, reportCompressedSize: true },
  };
});

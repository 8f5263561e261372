// One esbuild bundle for fast start-up (quality.md, "Performance").
// commander is CommonJS; bundling as ESM needs a real `require`, so the banner
// gives the bundle one through createRequire. fs-ext is a native addon and stays
// external: it is loaded from node_modules at run time.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true });

await build({
  entryPoints: ['commands/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Splitting puts what only some runs need (ora, loaded on a TTY) in its own chunk.
  splitting: true,
  outdir: 'dist',
  entryNames: 'geomctl',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  external: ['fs-ext'],
  define: { GEOMCTL_VERSION: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __geomctlCreateRequire } from 'node:module'; const require = __geomctlCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});

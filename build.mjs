// One esbuild bundle for fast start-up (quality.md, "Performance").
// commander is CommonJS; bundling as ESM needs a real `require`, so the banner
// gives the bundle one through createRequire. fs-ext is a native addon and stays
// external: it is loaded from node_modules at run time.
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
process.chdir(root);

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

// Build beside dist and swap it in with renames, so that a geomctl started
// while a build runs (tests in another terminal) never finds dist half written.
const staging = `dist.building-${process.pid}`;
const retired = `dist.old-${process.pid}`;
rmSync(staging, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: ['commands/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Splitting puts what only some runs need (ora, loaded on a TTY) in its own chunk.
  splitting: true,
  outdir: staging,
  entryNames: 'geomctl',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  external: ['fs-ext'],
  define: { GEOMCTL_VERSION: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __geomctlCreateRequire } from 'node:module'; const require = __geomctlCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});

try {
  renameSync('dist', retired);
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
renameSync(staging, 'dist');
rmSync(retired, { recursive: true, force: true });

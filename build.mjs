// One esbuild bundle for fast start-up (quality.md, "Performance").
// commander is CommonJS; bundling as ESM needs a real `require`, so the banner
// gives the bundle one through createRequire. fs-ext is a native addon and stays
// external: it is loaded from node_modules at run time.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['commands/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: 'dist/geomctl.mjs',
  external: ['fs-ext'],
  define: { GEOMCTL_VERSION: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __geomctlCreateRequire } from 'node:module'; const require = __geomctlCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});

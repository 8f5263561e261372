// One esbuild bundle for fast start-up (quality.md, "Performance").
// commander is CommonJS; bundling as ESM needs a real `require`, so the banner
// gives the bundle one through createRequire. fs-ext is a native addon and stays
// external: it is loaded from node_modules at run time, when it is installed
// and loads in the running Node.js; geomctl falls back without it (src/platform/fs-ext.ts).
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
process.chdir(root);

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

// Node built-ins that take start-up time to load and that most runs never
// call: node:crypto (hashes and random ids, for labels, journals and the undo
// log) and node:child_process (commander requires it for executable
// subcommands, which geomctl has none of; demo runs the CLI). Each import of
// them gets a stand-in whose functions load the real module on first call.
// Only the functions named here exist: importing another one fails the build.
const LAZY_BUILTINS = {
  'node:crypto': ['createHash', 'randomBytes', 'randomInt'],
  'node:child_process': ['spawn', 'spawnSync'],
};

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${Object.keys(LAZY_BUILTINS).join('|')})$`) }, (args) => ({ path: args.path, namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: [
        "import { createRequire } from 'node:module';",
        'let real;',
        `const load = () => (real ??= createRequire(import.meta.url)(${JSON.stringify(args.path)}));`,
        ...LAZY_BUILTINS[args.path].map((fn) => `export function ${fn}(...args) { return load().${fn}(...args); }`),
      ].join('\n'),
    }));
  },
};

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
  plugins: [lazyBuiltins],
  // Less text for V8 to scan at every start; names stay, so stack traces
  // (GEOMCTL_DEBUG=1) still say which function failed.
  minifyWhitespace: true,
  minifySyntax: true,
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

// npm run bench: every benchmark in bench/, or those named on the command line
// (e.g. `npm run bench -- startup`). Exit 1 when a target was missed.
// A module without a default export (lib.mjs, node-stream.mjs: helpers) is not a benchmark.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const names = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.replace(/\.mjs$/, ''))
  .filter((n) => wanted.length === 0 || wanted.includes(n));
let missed = 0;
for (const name of names) {
  const { default: bench } = await import(`./${name}.mjs`);
  if (typeof bench !== 'function') continue;
  console.log(`== ${name}`);
  let ok = false;
  try {
    ok = await bench();
  } catch (err) {
    // One broken benchmark (a verb that fails) must not hide the others' numbers.
    console.log(`${name}: FAILED: ${err instanceof Error ? err.message : err}`);
  }
  if (!ok) missed++;
}
console.log(missed ? `${missed} benchmark(s) missed their target` : 'all benchmarks met their targets');
process.exitCode = missed ? 1 : 0;

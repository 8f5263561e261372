// npm run bench: every benchmark in bench/, or those named on the command line
// (e.g. `npm run bench -- startup`). Exit 1 when a target was missed.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const names = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && !['run.mjs', 'lib.mjs'].includes(f))
  .map((f) => f.replace(/\.mjs$/, ''))
  .filter((n) => wanted.length === 0 || wanted.includes(n));
let missed = 0;
for (const name of names) {
  console.log(`== ${name}`);
  const { default: bench } = await import(`./${name}.mjs`);
  if (!(await bench())) missed++;
}
console.log(missed ? `${missed} benchmark(s) missed their target` : 'all benchmarks met their targets');
process.exitCode = missed ? 1 : 0;

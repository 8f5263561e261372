// geomctl demo: the main job end to end on scratch images (cli.md, "Top-level
// verbs"). Until the journal and virstor verbs land it says so and exits 0.

import type { CommandSpec } from './framework.js';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'run the whole story (label, write, crash, replay, sync, dump) on scratch images',
  args: '',
  options: [{ long: 'keep', value: 'dir', kind: 'string', description: 'keep the scratch images in DIR' }],
  examples: ['geomctl demo', 'geomctl demo --keep /tmp/geomctl-demo'],
  run(ctx) {
    ctx.out.text('geomctl demo: nothing to show yet (the journal and virstor verbs are not built yet)');
  },
};

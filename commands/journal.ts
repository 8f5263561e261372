// The journal class (gjournal(8)): its verbs declared as data. Logic lives in
// src/journal/; handlers here only parse, call, and print.

import type { ClassSpec } from './framework.js';

export const journalClass: ClassSpec = {
  name: 'journal',
  aliases: ['gjournal'],
  summary: 'block-level journaling (gjournal): label, write, replay, sync, inspect',
  commands: [],
};

// The virstor class (gvirstor(8)): its verbs declared as data. Logic lives in
// src/virstor/; handlers here only parse, call, and print.

import type { ClassSpec } from './framework.js';

export const virstorClass: ClassSpec = {
  name: 'virstor',
  aliases: ['gvirstor'],
  summary: 'thin-provisioned virtual disks (gvirstor): label, write, add, remove, inspect',
  commands: [],
};

// Random 32-bit ids: md_id of a new journal or virstor device and journal ids
// (arc4random's role in the kernel and in geom(8)'s label).

import { randomInt } from 'node:crypto';

export const randomU32 = (): number => randomInt(0, 0x100000000);

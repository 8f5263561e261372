// Names geomctl gives a device (a virstor md_name; later serve's export
// name), and the names of the providers geoms offer — one definition of each
// form, for every class. FreeBSD makes each one a node under /dev (virstor/NAME), and devfs
// (prep_devname in kern_conf.c) takes no empty name and no '.' or '..'
// component; a '/' would put the device in a subdirectory that the other
// commands do not look in, and control characters break every listing that
// prints the name. Such names are usage errors, whatever the class: the
// length limit is the class's own (md_name holds 15 bytes).

import { UsageError } from '../errors.js';

const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Refuses a device name FreeBSD's devfs would not take, naming the rule.
 * `what` says whose name it is ("virstor name").
 */
export function checkDeviceName(name: string, what: string): void {
  const rule = ruleBroken(name);
  if (rule) throw new UsageError(`invalid ${what} ${JSON.stringify(name)}: ${rule}`, 'choose a name of printable characters, without /');
}

function ruleBroken(name: string): string | undefined {
  if (name === '') return 'a device name cannot be empty';
  const control = CONTROL.exec(name);
  if (control) return `a device name cannot hold a control character (here 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')})`;
  if (name.includes('/')) return "a device name cannot hold '/'";
  if (name === '.' || name === '..') return "'.' or '..' is not a device name";
  return undefined;
}

/** What FreeBSD users may put before a provider's name: its node under devfs. */
export const DEV_PREFIX = '/dev/';
/** A virstor device's provider is "virstor/NAME" (g_virstor.c, g_new_providerf "virstor/%s"). */
export const VIRSTOR_PREFIX = 'virstor/';
/** A journal's provider is its data provider's name and this (g_journal.c, g_new_providerf "%s.journal"). */
export const JOURNAL_SUFFIX = '.journal';

/** A provider's name without a leading "/dev/". */
export function withoutDev(name: string): string {
  return name.startsWith(DEV_PREFIX) ? name.slice(DEV_PREFIX.length) : name;
}

/** The provider virstor device `device` offers. */
export function virstorProviderName(device: string): string {
  return `${VIRSTOR_PREFIX}${device}`;
}

/** The provider a journal whose data provider is `data` offers. */
export function journaledProviderName(data: string): string {
  return `${data}${JOURNAL_SUFFIX}`;
}

/**
 * The kernel's g_compare_names: a hardcoded provider name (md_provider) and
 * the name a provider is offered under are one when equal, ignoring a leading
 * "/dev/" on either side. Both classes' taste compares them so.
 */
export function sameProviderName(a: string, b: string): boolean {
  return withoutDev(a) === withoutDev(b);
}

// Opening a provider by name (providers.md, "Naming a provider"): an image,
// or a class's provider through the class's own opener, which its verbs use
// too — serve and the verbs open providers one way.

import { GeomError, UsageError } from '../src/errors.js';
import type { BlockProvider } from '../src/provider/block.js';
import { imageBlockProvider } from '../src/provider/image-block.js';
import { isFile, providerKind, virstorDeviceName } from '../src/geom/naming.js';
import type { Context } from './framework.js';
import { journalArgs, openJournalProvider } from './journal.js';
import { openVirstorProvider } from './virstor.js';

/**
 * Opens the provider `name` names, locked for writing (or shared without
 * `write`): an existing file is an image; otherwise the tasting graph knows
 * stacked providers (virstor/thin.journal) and the name's form tells the
 * rest. `switchTime` and `forceSwitch` are a journal's switch policy
 * (serve's --switch-time and --force-switch).
 */
export function openProvider(ctx: Context, name: string, o: { write: boolean; switchTime: number; forceSwitch: number }): BlockProvider {
  if (isFile(name)) {
    const session = ctx.openSession([name], { write: o.write });
    return imageBlockProvider(session.engine, () => session.close());
  }
  const kind = ctx.stacks.providerOf(name)?.kind ?? providerKind(name);
  if (kind === 'virstor') return openVirstorProvider(ctx, virstorDeviceName(name), { write: o.write }).provider;
  if (kind === 'journal') {
    if (!o.write) throw new UsageError(`serve -r of ${name}: a journal provider is served read-write only`, 'serve it without -r (reads never change it), or serve its data image read-only');
    return openJournalProvider(ctx, journalArgs(ctx, [name]), { write: true, policy: { switchTime: o.switchTime, forceSwitch: o.forceSwitch } }).provider;
  }
  throw new GeomError('NOT_FOUND', `${name}: no such image or provider`, "name an image file, 'virstor/NAME' or 'IMAGE.journal'");
}

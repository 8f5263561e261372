// What the virstor class needs of the command that runs it: the candidates
// to taste and a way to read them (TasteHost), and a way to open a session
// over the images chosen (VirstorHost). The command line gives images and the
// -d directories' files (commands/virstor.ts hostOf); a stack gives the
// providers below a virstor geom (src/geom/stack.ts).

import type { Engine } from '../engine/types.js';
import type { Provider } from '../provider/provider.js';

/** What openVirstor needs of a session (src/engine/session.ts's Session has it). */
export interface VirstorSession {
  readonly engine: Engine;
  readonly providers: readonly Provider[];
  /** Undo logs rolled back while opening: the images changed under the taste. */
  readonly recovered: readonly string[];
  close(): void;
}

/** What tasting needs: the candidates and a way to read them. */
export interface TasteHost {
  /** Candidate image paths (cli.md, "Tasting"): named images and the -d directories' files. */
  readonly candidates: readonly string[];
  /** Opens an image read-only for tasting: no lock, no recovery. The caller closes it. */
  probe(path: string): Provider;
  /** -H: accept components whose hardcoded provider name differs from the image name. */
  readonly ignoreHardcoded: boolean;
}

/** Where a device's images come from: the command line, the -d directories, the session layer. */
export interface VirstorHost extends TasteHost {
  /**
   * Opens the images of the command through the flush engine (locks,
   * recovery). `above`: the provider the device offers, virstor/<name> — a
   * component lying on it would be a loop (src/geom/stack.ts).
   */
  openSession(paths: string[], opts: { write: boolean; above?: string }): VirstorSession;
  /**
   * Rolls back the crashed transactions that cover candidates (src/engine/session.ts,
   * rollBackCandidates); returns the undo logs rolled back. A host whose
   * sessions keep no undo logs beside the candidates needs none.
   */
  rollBackCandidates?(): readonly string[];
  /** The crashed transactions covering candidates (src/engine/session.ts, unfinishedCovering). */
  unfinished?(): readonly { log: string; paths: readonly string[] }[];
}

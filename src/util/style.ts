// How listings mark up their text for a terminal (issue 12: colour on a TTY).
// src/ renders text and never decides about terminals: a verb hands in a
// TextStyle (commands/colour.ts builds one on chalk when colour is on), and
// PLAIN, the default, returns every string as it is — so the text off a
// terminal is byte for byte what it was before colour existed.

/** What a status word means to the reader: the colour a terminal shows it in. */
export type Tone = 'good' | 'caution' | 'bad';

export interface TextStyle {
  /** A status word or phrase coloured by meaning: CLEAN good, DIRTY caution, BROKEN bad. */
  tone(text: string, tone: Tone): string;
  /** A heading: a table's header line, a geom's "Geom name:" line, a section title. */
  heading(text: string): string;
  /** The value of a table's column `index` (0, 1, ...), told apart from its neighbours. */
  column(text: string, index: number): string;
}

const same = (text: string): string => text;

/** No markup at all: the text off a terminal. */
export const PLAIN: TextStyle = { tone: same, heading: same, column: same };

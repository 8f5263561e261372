// The fixed newstyle handshake (proto.md, "Option haggling"): the greeting,
// the client's flags, then options until EXPORT_NAME or a successful GO
// selects the export. Options geomctl does not serve get NBD_REP_ERR_UNSUP
// and the haggling goes on, as serve.md asks.

import {
  BASE_ALLOCATION,
  CLIENT_FLAG_FIXED_NEWSTYLE,
  CLIENT_FLAG_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO,
  OPT,
  OPTION_HEADER_SIZE,
  REP,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeMetaContextReply,
  encodeOptionError,
  encodeOptionReply,
  encodeServerReply,
  type BlockSizes,
} from './protocol.js';
import type { SocketReader } from './reader.js';

/** What the server offers: one export. */
export interface ExportInfo {
  name: string;
  description: string;
  size: number;
  transmissionFlags: number;
  blockSizes: BlockSizes;
}

export interface Negotiated {
  /** Structured replies were negotiated (needed for BLOCK_STATUS). */
  structured: boolean;
  /** The id of base:allocation when the client selected it. */
  allocationContext: number | undefined;
}

/** Options longer than this are refused unread (nothing geomctl serves needs more). */
const MAX_OPTION_LENGTH = 64 * 1024;
/** A client that haggles longer than this many options is dropped. */
const MAX_OPTIONS = 1024;
/** The id geomctl gives base:allocation. */
export const ALLOCATION_CONTEXT_ID = 1;

export class HandshakeFailed extends Error {}

/** An option's payload decoded, or undefined after answering NBD_REP_ERR_INVALID (the haggling goes on). */
function decodeOrRefuse<T>(decode: (data: Buffer) => T, data: Buffer, option: number, send: (b: Buffer) => void): T | undefined {
  try {
    return decode(data);
  } catch (err) {
    send(encodeOptionError(option, REP.ERR_INVALID, (err as Error).message));
    return undefined;
  }
}

/**
 * Runs the handshake on a fresh connection. Returns the negotiated state when
 * the client enters transmission, undefined when it aborts or haggles badly
 * (the caller closes the connection).
 */
export async function handshake(reader: SocketReader, send: (b: Buffer) => void, exp: ExportInfo): Promise<Negotiated | undefined> {
  send(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if ((clientFlags & CLIENT_FLAG_FIXED_NEWSTYLE) === 0 || (clientFlags & ~(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES)) !== 0) {
    // Old clients and unknown flags: proto.md says to close the connection.
    return undefined;
  }
  const noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) !== 0;
  const state: Negotiated = { structured: false, allocationContext: undefined };
  const nameMatches = (name: string): boolean => name === '' || name === exp.name;

  for (let n = 0; n < MAX_OPTIONS; n++) {
    const header = decodeOptionHeader(await reader.read(OPTION_HEADER_SIZE));
    if (header.magic !== IHAVEOPT) return undefined;
    const { option, length } = header;
    if (length > MAX_OPTION_LENGTH) {
      if (option === OPT.EXPORT_NAME) return undefined;
      await reader.skip(length);
      send(encodeOptionError(option, REP.ERR_TOO_BIG, 'option too long'));
      continue;
    }
    const data = await reader.read(length);
    switch (option) {
      case OPT.EXPORT_NAME: {
        // No error reply exists for EXPORT_NAME: an unknown name closes the connection.
        if (!nameMatches(data.toString('utf8'))) return undefined;
        send(encodeExportNameReply(BigInt(exp.size), exp.transmissionFlags, noZeroes));
        return state;
      }
      case OPT.ABORT:
        send(encodeOptionReply(option, REP.ACK));
        return undefined;
      case OPT.LIST:
        if (length !== 0) {
          send(encodeOptionError(option, REP.ERR_INVALID, 'LIST takes no data'));
          break;
        }
        send(encodeServerReply(exp.name));
        send(encodeOptionReply(option, REP.ACK));
        break;
      case OPT.INFO:
      case OPT.GO: {
        const request = decodeOrRefuse(decodeInfoRequest, data, option, send);
        if (!request) break;
        if (!nameMatches(request.name)) {
          send(encodeOptionError(option, REP.ERR_UNKNOWN, `no export named '${request.name}'; this server exports '${exp.name}'`));
          break;
        }
        send(encodeInfoExport(option, BigInt(exp.size), exp.transmissionFlags));
        if (request.items.includes(INFO.NAME)) send(encodeInfoString(option, INFO.NAME, exp.name));
        if (request.items.includes(INFO.DESCRIPTION)) send(encodeInfoString(option, INFO.DESCRIPTION, exp.description));
        // Block sizes go out whether asked or not: clients that ignore them are served correctly too.
        send(encodeInfoBlockSize(option, exp.blockSizes));
        send(encodeOptionReply(option, REP.ACK));
        if (option === OPT.GO) return state;
        break;
      }
      case OPT.STRUCTURED_REPLY:
        if (length !== 0) {
          send(encodeOptionError(option, REP.ERR_INVALID, 'STRUCTURED_REPLY takes no data'));
          break;
        }
        state.structured = true;
        send(encodeOptionReply(option, REP.ACK));
        break;
      case OPT.LIST_META_CONTEXT:
      case OPT.SET_META_CONTEXT: {
        if (!state.structured) {
          send(encodeOptionError(option, REP.ERR_INVALID, 'negotiate structured replies first'));
          break;
        }
        const request = decodeOrRefuse(decodeMetaContextRequest, data, option, send);
        if (!request) break;
        if (!nameMatches(request.name)) {
          send(encodeOptionError(option, REP.ERR_UNKNOWN, `no export named '${request.name}'`));
          break;
        }
        const listing = option === OPT.LIST_META_CONTEXT;
        // LIST with no query lists every context; "base:" asks for the whole namespace.
        const wanted = (listing && request.queries.length === 0) || request.queries.some((q) => q === BASE_ALLOCATION || (listing && q === 'base:'));
        if (!listing) state.allocationContext = wanted ? ALLOCATION_CONTEXT_ID : undefined;
        if (wanted) send(encodeMetaContextReply(option, ALLOCATION_CONTEXT_ID, BASE_ALLOCATION));
        send(encodeOptionReply(option, REP.ACK));
        break;
      }
      case OPT.STARTTLS:
        send(encodeOptionError(option, REP.ERR_POLICY, 'geomctl serve has no TLS'));
        break;
      default:
        send(encodeOptionError(option, REP.ERR_UNSUP, `option ${option} is not supported`));
    }
  }
  return undefined;
}

// The NBD wire format against byte strings written out from proto.md (the
// NetworkBlockDevice project's doc/proto.md), not from the encoders.

import { describe, expect, it } from 'vitest';
import {
  CMD,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  OPT,
  REP,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeRequest,
  encodeBlockStatus,
  encodeErrorChunk,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeOffsetDataHeader,
  encodeOptionReply,
  encodeSimpleReply,
} from '../../src/nbd/protocol.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cookie = hex('0102030405060708');

describe('NBD protocol codec', () => {
  it('greets with NBDMAGIC, IHAVEOPT and the handshake flags', () => {
    // "NBDMAGIC" "IHAVEOPT" then 16 bits: FIXED_NEWSTYLE | NO_ZEROES = 3
    expect(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).toEqual(Buffer.concat([Buffer.from('NBDMAGICIHAVEOPT', 'latin1'), hex('0003')]));
  });

  it('frames option replies with the reply magic 0x3e889045565a9', () => {
    expect(encodeOptionReply(OPT.STRUCTURED_REPLY, REP.ACK)).toEqual(hex('0003e889045565a9 00000008 00000001 00000000'));
    expect(encodeOptionReply(OPT.GO, REP.ERR_UNSUP)).toEqual(hex('0003e889045565a9 00000007 80000001 00000000'));
  });

  it('encodes NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE', () => {
    expect(encodeInfoExport(OPT.GO, 0x40000000n, 0x14d)).toEqual(hex('0003e889045565a9 00000007 00000003 0000000c 0000 0000000040000000 014d'));
    expect(encodeInfoBlockSize(OPT.INFO, { minimum: 512, preferred: 65536, maximum: 32 << 20 })).toEqual(
      hex('0003e889045565a9 00000006 00000003 0000000e 0003 00000200 00010000 02000000'),
    );
  });

  it('answers EXPORT_NAME with size, flags and 124 zeros unless NO_ZEROES', () => {
    expect(encodeExportNameReply(4096n, 1, true)).toEqual(hex('0000000000001000 0001'));
    const long = encodeExportNameReply(4096n, 1, false);
    expect(long.length).toBe(134);
    expect(long.subarray(10).every((b) => b === 0)).toBe(true);
  });

  it('decodes INFO/GO and META_CONTEXT payloads and refuses malformed ones', () => {
    expect(decodeInfoRequest(hex('00000003 616263 0002 0001 0003'))).toEqual({ name: 'abc', items: [1, 3] });
    expect(() => decodeInfoRequest(hex('00000009 616263 0000'))).toThrow(RangeError);
    const q = Buffer.concat([hex('00000000 00000001 0000000f'), Buffer.from('base:allocation')]);
    expect(decodeMetaContextRequest(q)).toEqual({ name: '', queries: ['base:allocation'] });
    expect(() => decodeMetaContextRequest(Buffer.concat([q, hex('00')]))).toThrow(RangeError);
  });

  it('decodes a request header: magic, flags, type, cookie, offset, length', () => {
    const r = decodeRequest(hex('25609513 0001 0001 0102030405060708 0000000000100000 00001000'));
    expect(r).toEqual({ magic: 0x25609513, flags: 1, type: CMD.WRITE, cookie, offset: 0x100000, length: 0x1000 });
    // An offset past 2^53 is past any export.
    expect(decodeRequest(hex('25609513 0000 0000 0102030405060708 ffffffffffffffff 00000200')).offset).toBe(Number.POSITIVE_INFINITY);
  });

  it('encodes simple and structured replies', () => {
    expect(encodeSimpleReply(22, cookie)).toEqual(hex('67446698 00000016 0102030405060708'));
    expect(encodeOffsetDataHeader(1, cookie, 0x200, 0x10)).toEqual(hex('668e33ef 0001 0001 0102030405060708 00000018 0000000000000200'));
    expect(encodeBlockStatus(1, cookie, 1, [{ length: 0x1000, flags: 3 }, { length: 0x200, flags: 0 }])).toEqual(
      hex('668e33ef 0001 0005 0102030405060708 00000014 00000001 00001000 00000003 00000200 00000000'),
    );
    expect(encodeErrorChunk(cookie, 5, 'no')).toEqual(hex('668e33ef 0001 8001 0102030405060708 00000008 00000005 0002 6e6f'));
  });
});

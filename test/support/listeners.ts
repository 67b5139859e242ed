/**
 * Which TCP sockets listen, on which local address, read from Linux's /proc (no connection is made, so
 * nothing is sent to any address of this machine but loopback).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface Listener {
  /** The local address, e.g. `127.0.0.1`, `0.0.0.0`, `::`, `::1`, `::ffff:127.0.0.1`. */
  readonly address: string;
  readonly port: number;
  /** The socket's inode, to find the process that holds it. */
  readonly inode: number;
}

const LISTEN = '0A';

/** /proc/net/tcp{,6} write each 32-bit word of an address in the machine's byte order (little-endian here). */
function addressBytes(hex: string): number[] {
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const chunk = hex.slice(word, word + 8);
    for (let i = 6; i >= 0; i -= 2) bytes.push(parseInt(chunk.slice(i, i + 2), 16));
  }
  return bytes;
}

function formatAddress(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const v4 = bytes.slice(12).join('.');
  if (bytes.slice(0, 10).every((b) => b === 0)) {
    if (bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${v4}`;
    if (bytes.slice(10, 15).every((b) => b === 0) && (bytes[15] === 0 || bytes[15] === 1)) return bytes[15] === 1 ? '::1' : '::';
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

/** Every TCP socket in LISTEN state in this network namespace. */
export function listeningSockets(): Listener[] {
  const out: Listener[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN) continue;
      const [addressHex, portHex] = fields[1]!.split(':') as [string, string];
      out.push({ address: formatAddress(addressBytes(addressHex)), port: parseInt(portHex, 16), inode: Number(fields[9]) });
    }
  }
  return out;
}

/** The inodes of the sockets process `pid` holds open. */
export function socketInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes; // gone
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** The listening sockets held by any of `pids`. */
export function listenersOf(pids: readonly number[]): Listener[] {
  const inodes = new Set(pids.flatMap((pid) => [...socketInodes(pid)]));
  return listeningSockets().filter((l) => inodes.has(l.inode));
}

export const isLoopback = (address: string): boolean =>
  address === '::1' || /^127\./.test(address) || /^::ffff:127\./.test(address);

// Test support: damage done to a file on disk, as a failing disk or a tamperer would. Changes only the
// file it is given.
import { open, stat } from 'node:fs/promises';

/** Flips the lowest bit of the byte in the middle of a file, in place. */
export async function flipMiddle(file: string): Promise<void> {
  const { size } = await stat(file);
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    const at = Math.floor(size / 2);
    await handle.read(byte, 0, 1, at);
    byte[0]! ^= 0x01;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

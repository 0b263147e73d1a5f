// Test support: a pickup attachment's bytes as a recipient's download gets them (the streamed reader).
// Reads only; never changes a pickup.
import { openPickupAttachment, type PickupRow } from '../../store/pickups.js';
import type { Store } from '../../store/store.js';

/** The bytes of attachment `index` of an opened pickup, read through the download stream. */
export async function attachmentBytes(
  store: Store,
  opened: { pickup: Pick<PickupRow, 'content_id'>; dataKey: Buffer },
  index: number,
): Promise<Buffer> {
  const found = await openPickupAttachment(store, opened.pickup, opened.dataKey, index);
  if (!found) throw new Error(`the pickup has no attachment ${index}`);
  const chunks: Buffer[] = [];
  for await (const chunk of found.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

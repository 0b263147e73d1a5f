// Queue ids: sortable by time, unguessable, safe in file names and SMTP replies.
import { randomBytes } from 'node:crypto';

export function newQueueId(now = Date.now()): string {
  return now.toString(36).toUpperCase().padStart(9, '0') + randomBytes(6).toString('hex').toUpperCase();
}

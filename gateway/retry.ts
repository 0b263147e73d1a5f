// Retry schedule: exponential backoff from retryInitialDelay, doubling, capped at retryMaxDelay.
import type { QueueConfig } from '../config/schema.js';

/** Delay before attempt number `attempts + 1`, given `attempts` failures so far (≥ 1). */
export function retryDelay(
  queue: Pick<QueueConfig, 'retryInitialDelay' | 'retryMaxDelay'>,
  attempts: number,
): number {
  const exp = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(queue.retryInitialDelay * 2 ** exp, queue.retryMaxDelay);
}

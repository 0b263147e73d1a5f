// Background purge of pickups: expires what is past its date (destroying keys), removes content files no
// live pickup needs, and drops idle recipient sessions. Logs counts only.
import type { Logger } from '../config/log.js';
import type { PickupConfig } from '../config/schema.js';
import { errorCode } from '../config/errors.js';
import { purgePickupSessions } from './pickup-sessions.js';
import { expirePickups } from './pickups.js';
import type { Store } from './store.js';

/** Runs one purge now and then every `purgeInterval`; the timer does not keep the process alive. */
export function startPickupPurger(store: Store, config: { pickup: PickupConfig }, log: Logger): () => void {
  let running = false;
  let stopped = false;
  const run = async (): Promise<void> => {
    if (running || stopped) return;
    running = true;
    try {
      const expired = await expirePickups(store);
      const sessions = await purgePickupSessions(store, config.pickup);
      if (expired || sessions) log.info({ evt: 'PICKUP_PURGED', expired, sessions }, 'pickups purged');
    } catch (err) {
      if (!stopped)
        log.error({ evt: 'PICKUP_PURGE_FAILED', code: errorCode(err), err }, 'pickup purge failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), config.pickup.purgeInterval);
  timer.unref();
  const first = setImmediate(() => void run());
  return () => {
    stopped = true;
    clearInterval(timer);
    clearImmediate(first);
  };
}

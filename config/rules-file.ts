// Where the DLP rules live at run time, decided in one place so the web (which publishes) and the gateway
// (which loads and hot-reloads) always agree. It only computes paths; it never reads or writes rules.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from './load.js';

/** The rule pack shipped with phi-gateway (config/dlp-rules.yaml). */
export const SHIPPED_RULES_FILE = fileURLToPath(new URL('../../config/dlp-rules.yaml', import.meta.url));

/**
 * The file an admin's publish writes and the gateway watches: `dlp.rulesFile` when set, otherwise
 * `<dataDir>/dlp-rules.yaml`.
 */
export function activeRulesFile(config: Pick<ResolvedConfig, 'dataDir' | 'dlp'>): string {
  return config.dlp.rulesFile ?? path.join(config.dataDir, 'dlp-rules.yaml');
}

/**
 * The file whose rules are in force now: the active file when it exists (or when `dlp.rulesFile` is set,
 * so a missing configured file is an error, not a silent fallback), otherwise the shipped pack.
 */
export function rulesFileInForce(config: Pick<ResolvedConfig, 'dataDir' | 'dlp'>): string {
  const active = activeRulesFile(config);
  return config.dlp.rulesFile || existsSync(active) ? active : SHIPPED_RULES_FILE;
}

// The staff browser with what the rules pages' tests also need: JSON calls with the CSRF header, and an
// admin sign-in that returns the session's CSRF token.
import type { Store } from '../../store/store.js';
import { totp } from '../../web/totp.js';
import { addStaff, StaffBrowser } from './staff-browser.js';

export class Browser extends StaffBrowser {
  /** A JSON call with the session's CSRF token in X-CSRF-Token (pass csrf '' to leave it out). */
  json(path: string, method: string, body: unknown, csrf: string) {
    return this.go(path, {
      method,
      headers: { 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) },
      body: JSON.stringify(body),
    });
  }

  /** Signs in an admin (password, then a TOTP code); returns the session's CSRF token. */
  async signInAdmin(email: string, password: string, secret: Buffer): Promise<string> {
    const form = await this.go('/login');
    const first = await this.post('/login', { _csrf: Browser.csrf(form.body), email, password, next: '' });
    if (first.status !== 303 || !first.location?.startsWith('/login/mfa'))
      throw new Error(`sign-in failed: ${first.status}`);
    const mfa = await this.go(first.location);
    const done = await this.post('/login/mfa', {
      _csrf: Browser.csrf(mfa.body),
      code: totp(secret),
      next: '',
    });
    if (done.status !== 303) throw new Error(`TOTP step failed: ${done.status}`);
    return Browser.csrf((await this.go('/admin/rules')).body);
  }
}

/** An admin with TOTP already enrolled; returns the secret for codes. */
export async function makeAdmin(store: Store, email: string, password: string): Promise<Buffer> {
  return (await addStaff(store, email, 'admin', password)).totpSecret;
}

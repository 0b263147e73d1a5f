// Test helpers for signed-in web pages over real HTTP: a cookie-keeping fetch client, and admins created
// with a known TOTP secret so a test signs in with a fresh code instead of walking through enrolment.
import { newTotpSecret, totp } from '../../web/totp.js';
import { addUser } from '../../store/users.js';
import type { Store } from '../../store/store.js';

export class Browser {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async go(
    path: string,
    init: RequestInit = {},
  ): Promise<{ status: number; body: string; location: string | null }> {
    const res = await fetch(this.base + path, {
      ...init,
      redirect: 'manual',
      headers: {
        ...(init.headers as Record<string, string>),
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /Expires=Thu, 01 Jan 1970/.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: res.status, body: await res.text(), location: res.headers.get('location') };
  }

  post(path: string, form: Record<string, string>) {
    return this.go(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** A JSON call with the session's CSRF token in X-CSRF-Token (pass csrf '' to leave it out). */
  json(path: string, method: string, body: unknown, csrf: string) {
    return this.go(path, {
      method,
      headers: { 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) },
      body: JSON.stringify(body),
    });
  }

  static csrf(body: string): string {
    return /name="_csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';
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
  await addUser(store.db, email, 'admin', password);
  const { id } = (await store.db('users').where({ email }).first('id')) as { id: number };
  const secret = newTotpSecret();
  await store
    .db('users')
    .where({ id })
    .update({ totp_secret: store.encryptValue(`totp:${id}`, secret) });
  return secret;
}

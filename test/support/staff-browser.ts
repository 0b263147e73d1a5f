// A cookie-keeping HTTP client for the staff/admin pages, and accounts ready to sign in (admins with a
// TOTP seed already enrolled, so tests can sign in without the enrolment pages).
import type { Store } from '../../store/store.js';
import { addUser, type Role } from '../../store/users.js';
import { newTotpSecret, totp } from '../../web/totp.js';

export class StaffBrowser {
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

  static csrf(body: string): string {
    return /name="_csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';
  }

  async signIn(email: string, password: string, totpSecret?: Buffer) {
    const form = await this.go('/login');
    const res = await this.post('/login', { _csrf: StaffBrowser.csrf(form.body), email, password, next: '' });
    if (!totpSecret || !res.location?.startsWith('/login/mfa')) return res;
    const mfa = await this.go('/login/mfa');
    return this.post('/login/mfa', { _csrf: StaffBrowser.csrf(mfa.body), code: totp(totpSecret), next: '' });
  }
}

/** Adds an account; an admin gets a TOTP seed already enrolled (returned) so tests can sign in. */
export async function addStaff(
  store: Store,
  email: string,
  role: Role,
  password = 'test-password-1234',
): Promise<{ email: string; password: string; totpSecret: Buffer }> {
  await addUser(store.db, email, role, password);
  const secret = newTotpSecret();
  const row = (await store.db('users').where({ email }).first('id')) as { id: number };
  if (role === 'admin') {
    await store
      .db('users')
      .where({ id: row.id })
      .update({ totp_secret: store.encryptValue(`totp:${row.id}`, secret), totp_enrolled_at: Date.now() });
  }
  return { email, password, totpSecret: secret };
}

// Accounts of the local stand-in for Kinde: the users fixture, stable `kp_`
// subject ids, and the claim sets an ID token, an access token and the
// user_profile endpoint carry. Kept apart from server.mjs so tests can compute
// the sub a login name will get without starting a provider.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

// subFor(login) -> "kp_" + 32 hex digits, the same for the same login name on
// every run and machine (Kinde user ids look like kp_<32 hex>).
export function subFor(login) {
  return `kp_${createHash('sha256').update(`kinde-fcgi-idp:${login}`).digest('hex').slice(0, 32)}`;
}

// loadFixture(path) -> {users, machines}; throws with the path on a bad file.
export function loadFixture(path) {
  let parsed;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read users fixture ${path}: ${err.message}`);
  }
  return { users: parsed.users ?? {}, machines: parsed.machines ?? {} };
}

// Everything the provider needs to know about one signed-in person.
export class Account {
  constructor(login, entry) {
    const e = entry ?? { given_name: login };
    this.login = login;
    this.id = e.id ?? subFor(login);
    this.givenName = e.given_name ?? login;
    this.familyName = e.family_name;
    // Kinde always has an email; invent a harmless one for ad-hoc logins.
    this.email = e.email ?? (login.includes('@') ? login : `${login}@example.test`);
    this.picture = e.picture;
    this.organizations = [...(e.organizations ?? [])];
    this.permissions = [...(e.permissions ?? [])];
    this.roles = [...(e.roles ?? [])];
    this.featureFlags = { ...(e.feature_flags ?? {}) };
    // The fixture is read once per process; this is a stand-in for Kinde's
    // user `updated_at`.
    this.updatedAt = Math.floor(Date.now() / 1000);
  }

  get name() {
    return this.familyName ? `${this.givenName} ${this.familyName}` : this.givenName;
  }

  get orgCodes() {
    return this.organizations.map((o) => o.code);
  }

  // The organisation a token speaks for: the requested one when the user
  // belongs to it, else the first (Kinde's default organisation).
  pickOrg(requested) {
    return this.organizations.find((o) => o.code === requested) ?? this.organizations[0];
  }

  // Standard OIDC claims (ID token); undefined members are left out, so a
  // user without a family name has no family_name claim at all.
  oidcClaims() {
    return stripUndefined({
      sub: this.id,
      name: this.name,
      given_name: this.givenName,
      family_name: this.familyName,
      picture: this.picture,
      email: this.email,
      email_verified: true,
      updated_at: this.updatedAt,
      org_codes: this.orgCodes,
    });
  }

  // Kinde's claims in a user's access token.
  accessTokenClaims(orgCode) {
    const org = this.pickOrg(orgCode);
    return stripUndefined({
      permissions: this.permissions,
      org_code: org?.code,
      org_name: org?.name,
      roles: this.roles,
      feature_flags: this.featureFlags,
    });
  }

  // Kinde's /oauth2/v2/user_profile answer.
  profile() {
    return stripUndefined({
      id: this.id,
      sub: this.id,
      provided_id: null,
      name: this.name,
      given_name: this.givenName,
      family_name: this.familyName,
      updated_at: this.updatedAt,
      email: this.email,
      email_verified: true,
      picture: this.picture,
    });
  }
}

function stripUndefined(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

// Accounts by sub; ad-hoc logins are created on first sign-in and live as long
// as the process (like the provider's in-memory sessions and tokens).
export class AccountStore {
  constructor(fixture) {
    this.fixture = fixture;
    this.bySub = new Map();
    for (const login of Object.keys(fixture.users)) {
      const account = new Account(login, fixture.users[login]);
      this.bySub.set(account.id, account);
    }
  }

  // accountForLogin(login) -> Account, created for unknown names.
  accountForLogin(login) {
    const entry = this.fixture.users[login];
    const id = entry?.id ?? subFor(login);
    let account = this.bySub.get(id);
    if (!account) {
      account = new Account(login, entry);
      this.bySub.set(account.id, account);
    }
    return account;
  }

  // find(sub) -> Account or undefined.
  find(sub) {
    return this.bySub.get(sub);
  }

  // machineClaims(clientId) -> Kinde claims for a client_credentials token.
  machineClaims(clientId) {
    const m = this.fixture.machines[clientId] ?? this.fixture.machines['*'] ?? {};
    return stripUndefined({
      gty: ['client_credentials'],
      permissions: m.permissions ?? [],
      org_code: m.org_code,
      feature_flags: m.feature_flags ?? {},
    });
  }
}

// A Map-based storage adapter for oidc-provider that never evicts live entries.
//
// oidc-provider's bundled memory adapter is an LRU capped at 1000 entries, so a test that issues many
// tokens silently loses the oldest ones. Here every entry lives until its own expiry (`expiresIn`
// seconds after the last upsert); expired entries are invisible to `find` at once and are swept from
// memory periodically.

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

const epochTime = () => Math.floor(Date.now() / 1000);

export class Store {
  /** @param {{ sweepIntervalMs?: number }} [options] */
  constructor({ sweepIntervalMs = 30_000 } = {}) {
    /** key `${model}:${id}` -> { model, id, payload, expiresAt (ms, Infinity = never) } */
    this.entries = new Map();
    /** grantId -> Set of entry keys */
    this.byGrant = new Map();
    /** `${model}:${uid}` -> id (Session.findByUid) */
    this.byUid = new Map();
    /** `${model}:${userCode}` -> id (DeviceCode.findByUserCode) */
    this.byUserCode = new Map();
    this.timer = setInterval(() => this.sweep(), sweepIntervalMs);
    this.timer.unref();
  }

  close() {
    clearInterval(this.timer);
  }

  /** Removes every expired entry; returns how many were removed. */
  sweep(now = Date.now()) {
    let removed = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.remove(key);
        removed += 1;
      }
    }
    return removed;
  }

  /** The live entry under `key`, or undefined (an expired one is removed on the way). */
  live(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.remove(key);
      return undefined;
    }
    return entry;
  }

  remove(key) {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const { model, id, payload } = entry;
    if (payload.grantId && GRANTABLE.has(model)) {
      const members = this.byGrant.get(payload.grantId);
      if (members) {
        members.delete(key);
        if (members.size === 0) this.byGrant.delete(payload.grantId);
      }
    }
    if (payload.uid && this.byUid.get(`${model}:${payload.uid}`) === id) {
      this.byUid.delete(`${model}:${payload.uid}`);
    }
    if (payload.userCode && this.byUserCode.get(`${model}:${payload.userCode}`) === id) {
      this.byUserCode.delete(`${model}:${payload.userCode}`);
    }
  }

  set(model, id, payload, expiresIn) {
    const key = `${model}:${id}`;
    this.remove(key);
    const expiresAt = typeof expiresIn === 'number' && Number.isFinite(expiresIn)
      ? Date.now() + expiresIn * 1000
      : Infinity;
    this.entries.set(key, { model, id, payload, expiresAt });
    if (payload.grantId && GRANTABLE.has(model)) {
      let members = this.byGrant.get(payload.grantId);
      if (!members) {
        members = new Set();
        this.byGrant.set(payload.grantId, members);
      }
      members.add(key);
    }
    if (model === 'Session' && payload.uid) this.byUid.set(`${model}:${payload.uid}`, id);
    if (payload.userCode) this.byUserCode.set(`${model}:${payload.userCode}`, id);
  }

  /** Live payloads of one model (for test helpers such as "log this user out"). */
  *list(model) {
    const now = Date.now();
    for (const entry of this.entries.values()) {
      if (entry.model === model && entry.expiresAt > now) yield entry;
    }
  }

  /** Counts of live entries per model. */
  counts() {
    const out = {};
    const now = Date.now();
    for (const entry of this.entries.values()) {
      if (entry.expiresAt > now) out[entry.model] = (out[entry.model] || 0) + 1;
    }
    return out;
  }

  /** The adapter class to give oidc-provider (`adapter` configuration); one instance per model name. */
  adapterClass() {
    const store = this;
    return class MapAdapter {
      constructor(model) {
        this.model = model;
      }

      async upsert(id, payload, expiresIn) {
        store.set(this.model, id, { ...payload }, expiresIn);
      }

      async find(id) {
        return store.live(`${this.model}:${id}`)?.payload;
      }

      async findByUserCode(userCode) {
        const id = store.byUserCode.get(`${this.model}:${userCode}`);
        return id === undefined ? undefined : this.find(id);
      }

      async findByUid(uid) {
        const id = store.byUid.get(`${this.model}:${uid}`);
        return id === undefined ? undefined : this.find(id);
      }

      async consume(id) {
        const entry = store.live(`${this.model}:${id}`);
        if (entry) entry.payload.consumed = epochTime();
      }

      async destroy(id) {
        store.remove(`${this.model}:${id}`);
      }

      async revokeByGrantId(grantId) {
        const members = store.byGrant.get(grantId);
        if (!members) return;
        for (const key of [...members]) {
          if (store.entries.get(key)?.model === this.model) store.remove(key);
        }
      }
    };
  }
}

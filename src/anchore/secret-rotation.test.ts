import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { SecretVolume } from '../../test/support/secret-volume.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AnchoreHttpClient } from './anchore.http.ts';
import { AnchoreError } from './errors.ts';

const log = createLogger({ level: 'silent', pretty: false });

describe('rotated credentials (a Secret update, no restart)', () => {
  let sim: AnchoreSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ config: {} });
  });
  afterAll(async () => {
    await sim.stop();
  });

  for (const mode of ['basic', 'oauth'] as const) {
    it(`when the password Secret is rotated under a running client (${mode}), then the next calls use the new password`, async () => {
      const vol = new SecretVolume('password', 'old-password');
      const auth = { type: mode, username: 'admin', password: 'old-password', secretFile: vol.path('password') } as const;
      const client = new AnchoreHttpClient({ url: sim.url, auth, log, retry: { attempts: 1 } });
      try {
        // Anchore already expects the new password; the Secret still holds the old one.
        const refused = await client.listPolicies('admin').catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(AnchoreError);
        expect((refused as AnchoreError).kind).toBe('auth');
        vol.update('password', 'foobar');
        // The 401 makes the client read the file again and retry once with what it holds now.
        await expect(client.listPolicies('admin')).resolves.toEqual(expect.any(Array));
      } finally {
        await client.close();
        rmSync(vol.dir, { recursive: true, force: true });
      }
    });
  }

  it('when the API-key Secret changes, then the client follows it', async () => {
    const vol = new SecretVolume('key', 'not-a-key');
    const client = new AnchoreHttpClient({ url: sim.url, auth: { type: 'apikey', key: 'not-a-key', secretFile: vol.path('key') }, log, retry: { attempts: 1 } });
    try {
      await expect(client.listPolicies('admin')).rejects.toBeInstanceOf(AnchoreError);
      vol.update('key', 'still-wrong');
      await expect(client.listPolicies('admin')).rejects.toMatchObject({ kind: 'auth', status: 401 });
    } finally {
      await client.close();
      rmSync(vol.dir, { recursive: true, force: true });
    }
  });
});

import net, { type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, spawnApi, testEnv } from '../../../test/harness.ts';

/**
 * The harness's spawnApi picks a free port, closes it and lets the API bind it: in between,
 * another process can take it (a CI run failed so: EADDRINUSE, "API process exited early").
 * Such a start is tried again on fresh ports.
 */
describe('spawnApi when its port is taken in the meantime', () => {
  // Holds the port, accepting connections and never answering, as a stranger's server might.
  const blocker = net.createServer();
  const sockets = new Set<net.Socket>();
  blocker.on('connection', (socket) => sockets.add(socket));
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  });

  it('starts the API on another port', async () => {
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as AddressInfo).port;
    const db = await createTestDatabase();
    try {
      const api = await spawnApi(testEnv(db.url), { firstPort: taken });
      try {
        expect(Number(new URL(api.url).port)).not.toBe(taken);
        expect((await fetch(`${api.url}/healthz`)).ok).toBe(true);
      } finally {
        await api.stop();
      }
    } finally {
      await db.drop();
    }
  }, 120_000);
});

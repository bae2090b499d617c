// Must NOT compile: a seat number given as a string and the idempotency key left out.
// packages/api/test/pack.test.ts checks that tsc rejects this file against the packed package.
import { api } from './src/client';

await api.reservations.hold.mutate({ scheduleId: 1, seatNumbers: ['12'] });
